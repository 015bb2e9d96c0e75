#include "kernel/main/replica_heartbeat.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

namespace airlock {
namespace {

// How soon a failed beat is tried again: a replica that lost its state
// connection should notice it is back quickly.
constexpr std::chrono::milliseconds kRetryInterval{1000};

}  // namespace

ReplicaHeartbeater::ReplicaHeartbeater(StateStore* store, ReplicaHeartbeat beat,
                                       std::chrono::milliseconds interval)
    : store_(store), beat_(std::move(beat)), interval_(interval) {
  BeatOnce();
  thread_ = std::thread([this] { Loop(); });
}

ReplicaHeartbeater::~ReplicaHeartbeater() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status ReplicaHeartbeater::health() const {
  std::lock_guard lock(mu_);
  return health_;
}

void ReplicaHeartbeater::BeatOnce() {
  Status status = store_->RecordHeartbeat(beat_);
  std::lock_guard lock(mu_);
  if (status.ok() && !health_.ok()) {
    spdlog::info("state store reachable again: replica {} is ready", beat_.replica_id);
  } else if (!status.ok() && health_.ok()) {
    spdlog::error("state store heartbeat failed, replica {} is not ready: {}", beat_.replica_id,
                  status.message());
  }
  health_ = std::move(status);
}

void ReplicaHeartbeater::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    const auto wait = health_.ok() ? interval_ : std::min(interval_, kRetryInterval);
    if (cv_.wait_for(lock, wait, [&] { return stopping_; })) return;
    lock.unlock();
    BeatOnce();
    lock.lock();
  }
}

}  // namespace airlock
