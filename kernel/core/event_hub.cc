#include "kernel/core/event_hub.h"

#include <utility>

#include <nlohmann/json.hpp>

namespace airlock {

EventHub::EventHub(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

void EventHub::Publish(std::string request_id, std::string event, std::string state,
                       int64_t version) {
  const HubEvent kept = Keep(std::move(request_id), std::move(event), std::move(state), version);
  if (relay_) relay_(kept);
}

void EventHub::PublishRelayed(std::string request_id, std::string event, std::string state,
                              int64_t version) {
  (void)Keep(std::move(request_id), std::move(event), std::move(state), version);
}

HubEvent EventHub::Keep(std::string request_id, std::string event, std::string state,
                        int64_t version) {
  std::map<uint64_t, std::function<void()>> woken;
  HubEvent kept;
  {
    std::lock_guard lock(mu_);
    ring_.push_back(
        HubEvent{next_id_++, std::move(request_id), std::move(event), std::move(state), version});
    if (ring_.size() > capacity_) ring_.pop_front();
    kept = ring_.back();
    woken.swap(waiting_);
  }
  for (auto& [token, wake] : woken) wake();
  return kept;
}

EventHub::Batch EventHub::Since(uint64_t after, size_t max) const {
  Batch batch;
  std::lock_guard lock(mu_);
  if (ring_.empty()) {
    batch.reset = after >= next_id_;  // a number this kernel never gave
    return batch;
  }
  const uint64_t oldest = ring_.front().id;
  if (after + 1 < oldest || after >= next_id_) batch.reset = true;
  const uint64_t from = batch.reset ? oldest : after + 1;
  for (size_t i = static_cast<size_t>(from - oldest); i < ring_.size() && batch.events.size() < max;
       ++i) {
    batch.events.push_back(ring_[i]);
  }
  return batch;
}

uint64_t EventHub::Wait(uint64_t after, std::function<void()> wake) {
  uint64_t token = 0;
  {
    std::lock_guard lock(mu_);
    token = next_token_++;
    // Something to read already (or a number to reset from): no waiting.
    if (after + 1 >= next_id_ && after < next_id_) {
      waiting_.emplace(token, std::move(wake));
      return token;
    }
  }
  wake();
  return token;
}

void EventHub::CancelWait(uint64_t token) {
  std::lock_guard lock(mu_);
  waiting_.erase(token);
}

uint64_t EventHub::last_id() const {
  std::lock_guard lock(mu_);
  return next_id_ - 1;
}

std::string EncodeRelayedEvent(const HubEvent& event) {
  return nlohmann::json{{"request_id", event.request_id},
                        {"event", event.event},
                        {"state", event.state},
                        {"version", event.version}}
      .dump();
}

std::optional<HubEvent> DecodeRelayedEvent(std::string_view payload) {
  const auto j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto text = [&](const char* key) -> const std::string* {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
  };
  auto version = j.find("version");
  const std::string* request_id = text("request_id");
  const std::string* event = text("event");
  const std::string* state = text("state");
  if (request_id == nullptr || request_id->empty() || event == nullptr || state == nullptr ||
      version == j.end() || !version->is_number_integer()) {
    return std::nullopt;
  }
  return HubEvent{0, *request_id, *event, *state, version->get<int64_t>()};
}

}  // namespace airlock
