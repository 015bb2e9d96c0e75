#include "kernel/core/deadline_queue.h"

namespace airlock {

bool DeadlineQueue::Set(const std::string& id, int64_t deadline_us) {
  auto [it, inserted] = by_id_.try_emplace(id, deadline_us);
  if (!inserted) {
    if (it->second == deadline_us) return false;
    by_time_.erase({it->second, id});
    it->second = deadline_us;
  }
  const auto placed = by_time_.emplace(deadline_us, id).first;
  return placed == by_time_.begin();
}

void DeadlineQueue::Clear(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  by_time_.erase({it->second, id});
  by_id_.erase(it);
}

std::vector<std::string> DeadlineQueue::TakeDue(int64_t now_us) {
  std::vector<std::string> due;
  while (!by_time_.empty() && by_time_.begin()->first <= now_us) {
    auto node = by_time_.extract(by_time_.begin());
    by_id_.erase(node.value().second);
    due.push_back(std::move(node.value().second));
  }
  return due;
}

std::optional<int64_t> DeadlineQueue::Earliest() const {
  if (by_time_.empty()) return std::nullopt;
  return by_time_.begin()->first;
}

}  // namespace airlock
