// A request_access call that waits (`wait_seconds`): its answer becomes a
// Server-Sent Events stream, as MCP's Streamable HTTP transport allows, that
// carries a notifications/progress message for each state the request
// passes through (when the call sent a progressToken) and ends with the
// call's JSON-RPC response once the request settles (ready, denied,
// failed, closed, cancelled, expired) or the wait runs out, whichever comes
// first. The states come from the kernel's event hub, so a human approving
// on any replica wakes the agent at once.
//
// Thread-safety: ResponseStream's; the work runs on `executor`.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "airlock/cpp/values.hpp"
#include "kernel/api/http_types.h"

namespace airlock {

class EventHub;
class RequestManager;

namespace mcp {

// Whether a request in `state` has settled: nothing a wait should outlast.
bool SettledState(std::string_view state);

class ApprovalWait final : public ResponseStream,
                           public std::enable_shared_from_this<ApprovalWait> {
 public:
  struct Call {
    Principal caller;
    std::string request_id;
    nlohmann::json rpc_id;
    nlohmann::json progress_token;  // null: no progress messages
    std::chrono::seconds wait{0};
    // Renders the call's result (a CallToolResult) from the request's view.
    std::function<nlohmann::json(const nlohmann::json& request)> result;
  };

  // Starts waiting from `first_state` (already sent as the first progress
  // message when the call asked for progress). `hub`, `requests` and the
  // executor's context outlive the stream.
  static std::shared_ptr<ApprovalWait> Start(EventHub* hub, RequestManager* requests,
                                             boost::asio::any_io_executor executor, Call call,
                                             const std::string& first_state);

  ApprovalWait(EventHub* hub, RequestManager* requests, boost::asio::any_io_executor executor,
               Call call);
  ~ApprovalWait() override;

  void Next(std::function<void(std::optional<std::string>)> deliver) override;
  void Cancel() override;

 private:
  // Reads the hub's events after the cursor; registers a wake-up when it
  // has none of this request's.
  void Produce();
  void Progress(const std::string& state);  // mu_ held
  // Queues the response with the request as it is now; ends the stream.
  void Finish();  // mu_ held
  void DeliverLocked(std::unique_lock<std::mutex>& lock);

  EventHub* const hub_;
  RequestManager* const requests_;
  boost::asio::any_io_executor executor_;
  const Call call_;
  boost::asio::steady_timer deadline_;

  std::mutex mu_;
  uint64_t cursor_ = 0;                                      // guarded by mu_
  std::string last_state_;                                   // guarded by mu_
  int64_t progress_ = 0;                                     // guarded by mu_
  std::deque<std::string> out_;                              // guarded by mu_
  std::function<void(std::optional<std::string>)> deliver_;  // guarded by mu_
  bool finished_ = false;                                    // guarded by mu_
  bool cancelled_ = false;                                   // guarded by mu_
  uint64_t wait_token_ = 0;                                  // guarded by mu_
};

}  // namespace mcp
}  // namespace airlock
