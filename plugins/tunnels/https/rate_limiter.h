// A token bucket: `per_minute` requests may burst at once, and the bucket
// refills at per_minute / 60 requests per second. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace airlock::tunnels::https {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // 0 disables limiting.
  explicit RateLimiter(uint32_t per_minute);

  // True when a request may proceed now (and consumes a token). Otherwise
  // false, with *retry_after_seconds set to when the next token arrives.
  bool TryAcquire(Clock::time_point now, int64_t* retry_after_seconds);

 private:
  const double capacity_;
  const double tokens_per_second_;
  std::mutex mutex_;
  double tokens_;                  // GUARDED_BY(mutex_)
  Clock::time_point last_refill_;  // GUARDED_BY(mutex_)
};

}  // namespace airlock::tunnels::https
