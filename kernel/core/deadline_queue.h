// Deadlines keyed by request id, ordered by time: the expiry scheduler's
// index. Setting, clearing and taking what is due cost O(log n), so the
// scheduler's work per wake-up does not grow with the number of live
// requests (a pending request waits with a deadline for its approval window).
//
// Not thread-safe: the owner guards it.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace airlock {

class DeadlineQueue {
 public:
  // Sets (or moves) the deadline of `id`. Returns true when it became the
  // earliest one, i.e. a waiting scheduler must wake up to honour it.
  bool Set(const std::string& id, int64_t deadline_us);

  // Forgets `id`; nothing happens if it has no deadline.
  void Clear(const std::string& id);

  // Removes and returns, earliest first, every id whose deadline is <= now_us.
  std::vector<std::string> TakeDue(int64_t now_us);

  // The earliest deadline, if any.
  std::optional<int64_t> Earliest() const;

  size_t size() const { return by_id_.size(); }

 private:
  std::set<std::pair<int64_t, std::string>> by_time_;
  std::unordered_map<std::string, int64_t> by_id_;
};

}  // namespace airlock
