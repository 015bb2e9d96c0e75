#include "kernel/api/event_stream.h"

#include <mutex>
#include <string>
#include <utility>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

namespace airlock {

namespace {

// Hub events read per round: one piece of the body stays small.
constexpr size_t kEventsPerPiece = 64;

std::string Frame(uint64_t id, std::string_view name, std::string_view data) {
  std::string frame = "id: " + std::to_string(id) + "\nevent: ";
  frame.append(name);
  frame += "\ndata: ";
  frame.append(data);
  frame += "\n\n";
  return frame;
}

}  // namespace

// One watcher: reads the hub from its cursor and renders what its caller
// may see. Its work runs on the streamer's pool.
class EventStreamer::Watcher : public ResponseStream, public std::enable_shared_from_this<Watcher> {
 public:
  Watcher(EventStreamer* owner, Principal caller, uint64_t cursor, bool announce_reset)
      : owner_(owner),
        caller_(std::move(caller)),
        cursor_(cursor),
        first_(true),
        announce_reset_(announce_reset) {}

  ~Watcher() override { owner_->CountWatchers(-1); }

  void Next(std::function<void(std::optional<std::string>)> deliver) override {
    {
      std::lock_guard lock(mu_);
      if (cancelled_) return;
      deliver_ = std::move(deliver);
    }
    Schedule();
  }

  void Cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    deliver_ = nullptr;
    if (wait_token_ != 0) owner_->hub_->CancelWait(wait_token_);
  }

 private:
  void Schedule() {
    if (owner_->stopped_.load()) return;
    boost::asio::post(owner_->pool_, [self = shared_from_this()] { self->Produce(); });
  }

  // Renders the next events this caller may see; when there are none, waits
  // for the hub and tries again.
  void Produce() {
    std::string piece;
    if (first_) {
      first_ = false;
      piece += "retry: 3000\n\n";
      piece += Frame(cursor_, announce_reset_ ? "reset" : "ready",
                     nlohmann::json{{"last_id", cursor_}}.dump());
    }
    const EventHub::Batch batch = owner_->hub_->Since(cursor_, kEventsPerPiece);
    if (batch.reset && piece.empty()) {
      const uint64_t resume =
          batch.events.empty() ? owner_->hub_->last_id() : batch.events.front().id - 1;
      piece += Frame(resume, "reset", nlohmann::json{{"last_id", resume}}.dump());
      cursor_ = resume;
    }
    for (const HubEvent& event : batch.events) {
      cursor_ = event.id;
      // The request as the caller may see it now; one it may not is skipped.
      auto view = owner_->requests_->GetText(caller_, event.request_id,
                                             /*audit_probes=*/false);
      if (!view.ok()) continue;
      std::string data = nlohmann::json{
          {"id", event.id},
          {"event", event.event},
          {"request_id", event.request_id},
          {"state", event.state},
          {"version",
           event.version}}.dump();
      data.pop_back();  // the closing brace: the view goes in as it is
      data += ",\"request\":" + *view + "}";
      piece += Frame(event.id, "request", data);
    }
    std::function<void(std::optional<std::string>)> deliver;
    {
      std::lock_guard lock(mu_);
      if (cancelled_) return;
      if (piece.empty()) {
        // Nothing for this caller yet: wake when the hub has more.
        std::weak_ptr<Watcher> weak = shared_from_this();
        wait_token_ = owner_->hub_->Wait(cursor_, [weak] {
          if (auto self = weak.lock()) self->Schedule();
        });
        return;
      }
      deliver = std::move(deliver_);
      deliver_ = nullptr;
    }
    if (deliver) deliver(std::move(piece));
  }

  EventStreamer* const owner_;
  const Principal caller_;
  // Only Produce touches these, and one Produce runs at a time: it runs
  // when the server asks for a piece (only after the last one was written)
  // and again on the hub's wake-up, which it registers only when it ends
  // without a piece.
  uint64_t cursor_;
  bool first_;
  const bool announce_reset_;

  std::mutex mu_;
  std::function<void(std::optional<std::string>)> deliver_;  // guarded by mu_
  bool cancelled_ = false;                                   // guarded by mu_
  uint64_t wait_token_ = 0;                                  // guarded by mu_
};

EventStreamer::EventStreamer(EventHub* hub, RequestManager* requests, Metrics* metrics,
                             size_t max_watchers)
    : hub_(hub),
      requests_(requests),
      gauge_(metrics == nullptr
                 ? nullptr
                 : &metrics->Get("airlock_event_watchers", "Open GET /v1/events streams", "gauge")),
      max_watchers_(max_watchers) {}

void EventStreamer::CountWatchers(int delta) {
  const size_t now = watchers_.fetch_add(static_cast<size_t>(delta)) + static_cast<size_t>(delta);
  if (gauge_ != nullptr) gauge_->Set(static_cast<int64_t>(now));
}

EventStreamer::~EventStreamer() {
  Shutdown();
}

Result<std::shared_ptr<ResponseStream>> EventStreamer::Open(const Principal& caller,
                                                            uint64_t after) {
  if (stopped_.load()) return Status::Unavailable("the kernel is stopping");
  if (watchers_.fetch_add(1) >= max_watchers_) {
    watchers_.fetch_sub(1);
    return Status::ResourceExhausted("too many event watchers (" + std::to_string(max_watchers_) +
                                     "); try again later");
  }
  // From now on, or from where the watcher left off: an id this kernel
  // never gave (another kernel's, or one from before a restart) resets.
  const uint64_t last = hub_->last_id();
  const bool unknown = after > last;
  const uint64_t cursor = after == 0 || unknown ? last : after;
  CountWatchers(0);  // counted above
  return std::shared_ptr<ResponseStream>(std::make_shared<Watcher>(this, caller, cursor, unknown));
}

void EventStreamer::Shutdown() {
  if (stopped_.exchange(true)) return;
  pool_.join();
}

}  // namespace airlock
