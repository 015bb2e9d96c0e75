// One enclave an agent runs for the kernel: provisioned by the agent's local
// isolator, its control channel relayed over the agent's link (stream N).
// Egress dials from the enclave are served here, on the agent's host, for
// the endpoints the kernel's spec approved and only until the enclave seals.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/agent/link_connection.h"
#include "kernel/enclave/channel.h"
#include "kernel/plugin_host/plugin_instances.h"

namespace airlock::agent {

class AgentEnclave {
 public:
  // Provisions through `isolator` and starts relaying to `link`.
  // `dial_pool` runs egress connects and must outlive the enclave.
  static Result<std::unique_ptr<AgentEnclave>> Provision(
      const plugin_host::IsolatorPlugin& isolator, uint32_t stream, const nlohmann::json& spec,
      std::shared_ptr<LinkConnection> link, boost::asio::thread_pool& dial_pool);
  ~AgentEnclave();  // Terminate()

  // A frame from the kernel for the enclave.
  void FromKernel(enclave::FrameType type, std::string_view payload);
  // Stops relaying, kills the enclave and wipes it. Idempotent.
  void Terminate();

 private:
  AgentEnclave(uint32_t stream, std::unique_ptr<plugin_host::EnclaveHandle> handle, int fd,
               std::set<std::string> approved, std::shared_ptr<LinkConnection> link,
               boost::asio::thread_pool& dial_pool);
  // What a pending dial needs; shared so a dial may finish after Terminate.
  struct Egress {
    uint32_t stream = 0;
    std::shared_ptr<enclave::FrameChannel> channel;
    std::set<std::string> approved;
    std::atomic<bool> sealed{false};
    std::atomic<bool> terminating{false};
    std::shared_ptr<LinkConnection> link;  // where outcomes are reported for the audit
  };
  void RelayLoop();
  static void Dial(const std::shared_ptr<Egress>& egress, const std::string& id,
                   const std::string& endpoint);

  const uint32_t stream_;
  std::unique_ptr<plugin_host::EnclaveHandle> handle_;
  std::shared_ptr<Egress> egress_;
  std::shared_ptr<LinkConnection> link_;
  boost::asio::thread_pool& dial_pool_;
  std::thread relay_;
  std::once_flag terminate_once_;
};

}  // namespace airlock::agent
