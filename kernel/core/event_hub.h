// Request transitions as a stream of numbered events, for GET /v1/events
// (Server-Sent Events) and whatever else follows requests live.
//
// The request manager publishes each transition once it is durable; events
// are numbered 1, 2, ... in publication order and the most recent
// `capacity` are kept, so a watcher that reconnects with the last number it
// saw gets what it missed, or is told to reload when that has been dropped
// (or the kernel restarted: numbers start again with each kernel). Events
// carry no request data: watchers read the request, with their own rights.
//
// Thread-safety: every method may be called from any thread. Wake-ups run on
// the publisher's thread and must only hand work off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock {

struct HubEvent {
  uint64_t id = 0;
  std::string request_id;
  std::string event;  // the audit event: "request.approved", "request.approval_recorded", ...
  std::string state;  // the request's state after it
  int64_t version = 0;
};

class EventHub {
 public:
  explicit EventHub(size_t capacity = 4096);

  // A transition made here: kept, and handed to the relay if there is one.
  void Publish(std::string request_id, std::string event, std::string state, int64_t version);
  // A transition another replica made (it came through the relay): kept,
  // not relayed again.
  void PublishRelayed(std::string request_id, std::string event, std::string state,
                      int64_t version);

  // Where transitions made here are also sent (to the other replicas'
  // hubs); called on the publisher's thread, so it must only hand off.
  // Set before anything is published.
  void set_relay(std::function<void(const HubEvent&)> relay) { relay_ = std::move(relay); }

  struct Batch {
    std::vector<HubEvent> events;  // after the asked id, oldest first
    // Events after the asked id were dropped (or the id is not one of this
    // kernel's): the watcher must reload what it shows. `events` then
    // starts at the oldest kept.
    bool reset = false;
  };
  Batch Since(uint64_t after, size_t max) const;

  // Runs `wake` once, when an event after `after` exists: at once (on this
  // thread) if one does, else on the thread that publishes it. A token for
  // CancelWait.
  uint64_t Wait(uint64_t after, std::function<void()> wake);
  // The wake-up of `token` will not run (if it has not yet).
  void CancelWait(uint64_t token);

  uint64_t last_id() const;

 private:
  // Keeps the event and wakes the waiting; the event as numbered.
  HubEvent Keep(std::string request_id, std::string event, std::string state, int64_t version);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<HubEvent> ring_;                          // guarded by mu_
  uint64_t next_id_ = 1;                               // guarded by mu_
  uint64_t next_token_ = 1;                            // guarded by mu_
  std::map<uint64_t, std::function<void()>> waiting_;  // guarded by mu_: by token
  std::function<void(const HubEvent&)> relay_;
};

// An event as the relay carries it between replicas (JSON without its
// number, which each hub gives anew), and back; nullopt for anything else.
std::string EncodeRelayedEvent(const HubEvent& event);
std::optional<HubEvent> DecodeRelayedEvent(std::string_view payload);

}  // namespace airlock
