// The kernel's end of one enclave that runs on an agent's host.
//
// The supervisor gets one end of a local socketpair and drives it as it
// drives any enclave (EnclaveClient); the bridge reads the other end and
// relays each frame over the agent's link (stream `stream`), and writes the
// frames the agent relays back. While the agent is offline the bridge answers
// queries and schema requests itself with Unavailable, naming the agent and
// the reason, so tunnels reply 503 instead of waiting. When a reconnecting
// agent no longer has the enclave, the bridge reports it failed, and the
// supervisor fails the request and tears it down as for any dead enclave.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "airlock/cpp/status.hpp"
#include "kernel/agent/link_connection.h"
#include "kernel/enclave/channel.h"

namespace airlock::agent {

class KernelBridge {
 public:
  // Creates the socketpair and starts relaying; `on_finished` runs once on
  // the relay thread when the supervisor's end is gone.
  static Result<std::shared_ptr<KernelBridge>> Open(std::string agent, uint32_t stream,
                                                    std::function<void()> on_finished);
  ~KernelBridge();  // Close()

  uint32_t stream() const { return stream_; }
  // The supervisor's end (owned by the caller from now on); -1 after the first call.
  int ReleaseSupervisorFd();

  // The agent's link carries the enclave (again).
  void Online(std::shared_ptr<LinkConnection> link);
  // The agent went offline: pending and future queries fail with
  // Unavailable("agent '<name>' is offline: <reason>").
  void Offline(const std::string& reason);
  // The enclave is gone for good: the supervisor sees it fail with `reason`.
  void Lost(const std::string& reason);
  // A frame the enclave sent, relayed by the agent.
  void FromAgent(enclave::FrameType type, std::string_view payload);
  // The agent says the enclave's channel ended: the supervisor sees it close.
  void EndedByAgent();
  // Stops relaying and closes the bridge's end. Idempotent.
  void Close();

 private:
  KernelBridge(std::string agent, uint32_t stream, int bridge_fd, int supervisor_fd,
               std::function<void()> on_finished);
  void RelayLoop();
  void AnswerUnavailable(const std::string& id, enclave::FrameType request,
                         const std::string& message);

  const std::string agent_;
  const uint32_t stream_;
  enclave::FrameChannel channel_;  // the bridge's end
  int supervisor_fd_;
  std::function<void()> on_finished_;
  std::thread relay_;

  std::mutex mu_;
  std::shared_ptr<LinkConnection> link_;                   // GUARDED_BY(mu_): null while offline
  std::string offline_reason_ = "not connected";           // GUARDED_BY(mu_)
  std::map<std::string, enclave::FrameType> outstanding_;  // GUARDED_BY(mu_): query/tables ids
  bool closed_ = false;                                    // GUARDED_BY(mu_)
};

}  // namespace airlock::agent
