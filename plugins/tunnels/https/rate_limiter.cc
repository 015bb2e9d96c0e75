#include "rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace airlock::tunnels::https {

RateLimiter::RateLimiter(uint32_t per_minute)
    : capacity_(per_minute),
      tokens_per_second_(per_minute / 60.0),
      tokens_(per_minute),
      last_refill_(Clock::now()) {}

bool RateLimiter::TryAcquire(Clock::time_point now, int64_t* retry_after_seconds) {
  if (capacity_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mutex_);
  if (now > last_refill_) {
    const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
    tokens_ = std::min(capacity_, tokens_ + elapsed * tokens_per_second_);
    last_refill_ = now;
  }
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  if (retry_after_seconds != nullptr) {
    *retry_after_seconds =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - tokens_) / tokens_per_second_)));
  }
  return false;
}

}  // namespace airlock::tunnels::https
