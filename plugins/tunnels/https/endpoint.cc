#include "endpoint.h"

namespace airlock::tunnels::https {

EndpointState::JobSlot::~JobSlot() {
  if (state_ != nullptr) state_->running_jobs_.fetch_sub(1);
}

std::optional<EndpointState::JobSlot> EndpointState::TryStartJob() {
  uint32_t running = running_jobs_.load();
  do {
    if (running >= max_concurrent_jobs_) return std::nullopt;
  } while (!running_jobs_.compare_exchange_weak(running, running + 1));
  return JobSlot(this);
}

}  // namespace airlock::tunnels::https
