// The kernel's side of the control channel to one enclave.
//
// A reader thread takes every frame the enclave sends and treats it as
// untrusted: frames are bounded (channel.h), JSON is validated, result
// batches are decoded by the bounds-checking codec, and anything malformed
// fails the query it belongs to (a malformed control frame, or an unknown
// frame type, ends the channel) — never the kernel.
//
// If the channel dies while the client is open, in-flight calls fail with
// Unavailable and on_state receives {"state":"failed","reason":"enclave
// channel closed"} (or the protocol violation that ended it). After Close(),
// in-flight calls fail with Cancelled and no event follows.
//
// Thread-safety: every method may be called from any thread, and Query /
// Tables concurrently. Events run on the reader thread, one at a time; they
// must not call Close() or destroy the client.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "kernel/enclave/channel.h"

namespace airlock::enclave {

struct EnclaveEvents {
  // {"dataset","rows","bytes","elapsed_ms","state":"pulling|done|failed|cancelled","error"?}
  std::function<void(const nlohmann::json& progress)> on_progress;
  // {"state":"ingesting|sealed|failed|job_finished", ...} (see enclave_runtime.h)
  std::function<void(const nlohmann::json& state)> on_state;
  // A connector's audit event (a JSON object) for the kernel's audit log.
  std::function<void(const nlohmann::json& audit)> on_audit;
  // Job mode: where result `index` ("job-<index>") goes, asked when its schema
  // arrives; null (or no function) drops it. The consumer must stay valid
  // until on_job_end for the same index.
  std::function<sdk::BatchConsumer*(size_t index)> on_job_result;
  // Job mode: result `index` ended with `status`; `rows` were delivered.
  std::function<void(size_t index, const Status& status, uint64_t rows)> on_job_end;
  // Egress: something inside the enclave connected to the forwarder of
  // `endpoint` ("host:port", as the spec listed it). Answer with
  // EnclaveClient::ReplyDial(id, ...) from any thread, promptly: a connector
  // waits. Without a handler every dial is refused.
  std::function<void(const std::string& id, const std::string& endpoint)> on_dial;
};

class EnclaveClient {
 public:
  // Takes ownership of `fd` (a connected stream socket to an enclave runtime)
  // and starts the reader thread.
  static Result<std::unique_ptr<EnclaveClient>> Start(int fd, EnclaveEvents events);
  ~EnclaveClient();  // Close()
  EnclaveClient(const EnclaveClient&) = delete;
  EnclaveClient& operator=(const EnclaveClient&) = delete;

  // Sends the enclave spec (enclave_spec.h). Call once, first.
  Status SendSpec(const nlohmann::json& spec);

  // Runs one read-only SQL statement on the sealed enclave and streams the
  // result into `consumer` on the calling thread: OnSchema once, then
  // OnBatch per batch. Returns the enclave's verdict (codes: invalid_argument,
  // permission_denied, deadline_exceeded, cancelled, resource_exhausted,
  // failed_precondition before sealing), DeadlineExceeded when `timeout`
  // passes first, Cancelled when consumer.IsCancelled() turns true (polled
  // about every 50 ms and between batches), the consumer's own error if it
  // refuses a schema or batch, Internal for a malformed result, Unavailable if
  // the channel dies. In every early return the enclave is sent Cancel.
  Status Query(std::string_view sql, sdk::BatchConsumer& consumer,
               std::chrono::milliseconds timeout);

  // Answers the enclave's dial `id`: hands it `connected` (a connected TCP
  // socket; the client closes its copy) or tells it why not.
  Status ReplyDial(const std::string& id, Result<UniqueFd> connected);

  // {"tables":[{"name","rows","columns":[{"name","type"}]}]} of the sealed enclave.
  Result<nlohmann::json> Tables(std::chrono::milliseconds timeout);

  // Sends Shutdown, closes the channel, fails in-flight calls with Cancelled
  // and joins the reader. Idempotent.
  void Close();

  // False once the channel is closed or broken.
  bool alive() const { return alive_.load(); }

  // Result bytes buffered per query; an enclave that sends more ignored flow
  // control (channel.h) and the query fails.
  static constexpr size_t kMaxBufferedResultBytes = kResultWindowBytes + kMaxFrameBytes;
  // Longest wait any call accepts (longer timeouts are shortened to it).
  static constexpr std::chrono::hours kMaxTimeout{24};
  // Job results the enclave may have open at once (it runs them one by one).
  static constexpr size_t kMaxOpenJobResults = 16;
  // Longest endpoint text a dial may name.
  static constexpr size_t kMaxEndpointBytes = 300;
  // Longest error text taken from the enclave.
  static constexpr size_t kMaxErrorTextBytes = 4096;

 private:
  struct Pending;
  struct JobResult;

  EnclaveClient(int fd, EnclaveEvents events);
  void ReaderLoop();
  Status Dispatch(Frame frame);
  Status DispatchJob(size_t index, Frame& frame, std::string_view rest);
  void FailAll(const Status& status);
  std::shared_ptr<Pending> Register(std::string id, FrameType end_type);
  void Unregister(const std::string& id);
  std::string NextId(char prefix);

  FrameChannel channel_;
  EnclaveEvents events_;
  std::thread reader_;
  std::atomic<bool> alive_{true};
  std::atomic<bool> closing_{false};
  std::atomic<uint64_t> next_id_{1};
  std::once_flag close_once_;

  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Pending>, std::less<>> pending_;  // GUARDED_BY(mutex_)
  Status dead_;  // GUARDED_BY(mutex_): why the channel ended; ok while alive

  // Reader thread only.
  std::map<size_t, std::unique_ptr<JobResult>> jobs_;
};

}  // namespace airlock::enclave
