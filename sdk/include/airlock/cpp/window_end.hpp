// The end of a request's access window as a tunnel endpoint keeps it: read
// on every use of the endpoint, moved later when the kernel extends the
// window (TunnelEndpoint::ExtendWindow, ABI 1.3). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "airlock/cpp/status.hpp"

namespace airlock::sdk {

class WindowEnd {
 public:
  explicit WindowEnd(int64_t not_after_unix_seconds) : not_after_(not_after_unix_seconds) {}

  // Unix seconds; the credential is refused after it.
  int64_t get() const { return not_after_.load(std::memory_order_acquire); }

  // Moves the end to the later `not_after`; InvalidArgument when it is not
  // later (a window is never shortened this way: revoking closes it).
  Status ExtendTo(int64_t not_after) {
    int64_t current = get();
    while (not_after > current) {
      if (not_after_.compare_exchange_weak(current, not_after, std::memory_order_acq_rel)) {
        return Status::Ok();
      }
    }
    return Status::InvalidArgument("the new window end " + std::to_string(not_after) +
                                   " is not later than the current " + std::to_string(current));
  }

 private:
  std::atomic<int64_t> not_after_;
};

}  // namespace airlock::sdk
