#include "kernel/mcp/approval_wait.h"

#include <utility>

#include <boost/asio/post.hpp>

#include "kernel/core/event_hub.h"
#include "kernel/core/request_manager.h"

namespace airlock::mcp {
namespace {

using nlohmann::json;

// Hub events read per round.
constexpr size_t kEventsPerRound = 64;

std::string SseMessage(const json& message) {
  return "event: message\ndata: " + message.dump(-1, ' ', false, json::error_handler_t::replace) +
         "\n\n";
}

}  // namespace

bool SettledState(std::string_view state) {
  return state == "ready" || state == "denied" || state == "failed" || state == "closed" ||
         state == "cancelled" || state == "expired";
}

std::shared_ptr<ApprovalWait> ApprovalWait::Start(EventHub* hub, RequestManager* requests,
                                                  boost::asio::any_io_executor executor, Call call,
                                                  const std::string& first_state) {
  auto wait = std::make_shared<ApprovalWait>(hub, requests, std::move(executor), std::move(call));
  std::unique_lock lock(wait->mu_);
  // From here on the hub says what changes; what changed since the request
  // was made is read once, so that nothing falls in between.
  wait->cursor_ = hub->last_id();
  wait->Progress(first_state);
  auto now = requests->Get(wait->call_.caller, wait->call_.request_id);
  const std::string state = now.ok() ? now->value("state", "") : first_state;
  if (state != first_state) wait->Progress(state);
  if (SettledState(state)) {
    wait->Finish();
    return wait;
  }
  std::weak_ptr<ApprovalWait> weak = wait;
  wait->deadline_.expires_after(wait->call_.wait);
  wait->deadline_.async_wait([weak](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) {
      std::unique_lock timed_out(self->mu_);
      if (self->finished_ || self->cancelled_) return;
      self->Finish();
      self->DeliverLocked(timed_out);
    }
  });
  lock.unlock();
  boost::asio::post(wait->executor_, [wait] { wait->Produce(); });
  return wait;
}

ApprovalWait::ApprovalWait(EventHub* hub, RequestManager* requests,
                           boost::asio::any_io_executor executor, Call call)
    : hub_(hub),
      requests_(requests),
      executor_(std::move(executor)),
      call_(std::move(call)),
      deadline_(executor_) {}

ApprovalWait::~ApprovalWait() {
  if (wait_token_ != 0) hub_->CancelWait(wait_token_);
}

void ApprovalWait::Next(std::function<void(std::optional<std::string>)> deliver) {
  std::unique_lock lock(mu_);
  if (cancelled_) return;
  deliver_ = std::move(deliver);
  DeliverLocked(lock);
}

void ApprovalWait::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  deliver_ = nullptr;
  if (wait_token_ != 0) hub_->CancelWait(wait_token_);
  wait_token_ = 0;
  deadline_.cancel();
}

void ApprovalWait::Produce() {
  std::unique_lock lock(mu_);
  if (finished_ || cancelled_) return;
  wait_token_ = 0;
  const EventHub::Batch batch = hub_->Since(cursor_, kEventsPerRound);
  if (batch.reset) {
    // Events were dropped: the request's state is read instead.
    auto now = requests_->Get(call_.caller, call_.request_id);
    if (now.ok()) Progress(now->value("state", ""));
  }
  for (const HubEvent& event : batch.events) {
    cursor_ = event.id;
    if (event.request_id == call_.request_id) Progress(event.state);
    if (SettledState(last_state_)) break;
  }
  if (SettledState(last_state_)) {
    Finish();
  } else if (batch.events.size() == kEventsPerRound) {
    boost::asio::post(executor_, [self = shared_from_this()] { self->Produce(); });
  } else {
    std::weak_ptr<ApprovalWait> weak = shared_from_this();
    wait_token_ = hub_->Wait(cursor_, [weak, executor = executor_] {
      if (auto self = weak.lock()) boost::asio::post(executor, [self] { self->Produce(); });
    });
  }
  DeliverLocked(lock);
}

void ApprovalWait::Progress(const std::string& state) {
  if (state.empty() || state == last_state_) return;
  last_state_ = state;
  if (call_.progress_token.is_null()) return;
  out_.push_back(SseMessage({{"jsonrpc", "2.0"},
                             {"method", "notifications/progress"},
                             {"params",
                              {{"progressToken", call_.progress_token},
                               {"progress", ++progress_},
                               {"message", "request " + call_.request_id + " is " + state}}}}));
}

void ApprovalWait::Finish() {
  auto now = requests_->Get(call_.caller, call_.request_id);
  json result;
  if (now.ok()) {
    result = call_.result(*now);
  } else {
    result = {{"content", {{{"type", "text"}, {"text", now.status().message()}}}},
              {"isError", true}};
  }
  out_.push_back(SseMessage({{"jsonrpc", "2.0"}, {"id", call_.rpc_id}, {"result", result}}));
  finished_ = true;
  deadline_.cancel();
  if (wait_token_ != 0) hub_->CancelWait(wait_token_);
  wait_token_ = 0;
}

void ApprovalWait::DeliverLocked(std::unique_lock<std::mutex>& lock) {
  if (!deliver_ || (out_.empty() && !finished_)) return;
  std::optional<std::string> piece;
  if (!out_.empty()) {
    piece.emplace();
    for (std::string& message : out_) piece->append(message);
    out_.clear();
  }
  auto deliver = std::move(deliver_);
  deliver_ = nullptr;
  lock.unlock();
  deliver(std::move(piece));
}

}  // namespace airlock::mcp
