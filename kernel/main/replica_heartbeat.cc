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

int64_t ReplicaHeartbeater::SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<ReplicaHeartbeater>> ReplicaHeartbeater::Start(StateStore* store,
                                                                      ReplicaHeartbeat beat,
                                                                      Options options) {
  const int64_t sent = SteadyNowNs();
  AIRLOCK_ASSIGN_OR_RETURN(beat.lease_epoch, store->AcquireLease(beat));
  std::unique_ptr<ReplicaHeartbeater> self(
      new ReplicaHeartbeater(store, std::move(beat), std::move(options)));
  self->held_until_ns_.store(
      sent +
      std::chrono::duration_cast<std::chrono::nanoseconds>(self->options_.lease_ttl).count());
  self->steady_since_ns_.store(sent);
  spdlog::info("replica {} holds lease {} (renewed every {} ms, lost after {} ms)",
               self->replica_id_, self->lease_epoch_, self->options_.interval.count(),
               self->options_.lease_ttl.count());
  self->thread_ = std::thread([raw = self.get()] { raw->Loop(); });
  return self;
}

ReplicaHeartbeater::ReplicaHeartbeater(StateStore* store, ReplicaHeartbeat beat, Options options)
    : store_(store),
      options_(std::move(options)),
      replica_id_(beat.replica_id),
      lease_epoch_(beat.lease_epoch),
      beat_(std::move(beat)) {}

ReplicaHeartbeater::~ReplicaHeartbeater() {
  StopThread();
}

void ReplicaHeartbeater::StopThread() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void ReplicaHeartbeater::SetApiUrl(std::string api_url) {
  {
    std::lock_guard lock(mu_);
    beat_.api_url = std::move(api_url);
    beat_now_ = true;
  }
  cv_.notify_all();
}

void ReplicaHeartbeater::Release() {
  StopThread();
  held_until_ns_.store(0);
  const Status released = store_->ReleaseLease(replica_id_, lease_epoch_);
  if (!released.ok()) {
    spdlog::warn("replica {} could not give its lease up (survivors wait for it to age): {}",
                 replica_id_, released.message());
  }
}

Status ReplicaHeartbeater::health() const {
  std::lock_guard lock(mu_);
  return health_;
}

bool ReplicaHeartbeater::LeaseHeld() const {
  return SteadyNowNs() < held_until_ns_.load(std::memory_order_acquire);
}

bool ReplicaHeartbeater::SteadyForATtl() const {
  const int64_t since = steady_since_ns_.load(std::memory_order_acquire);
  return since != 0 && LeaseHeld() &&
         SteadyNowNs() - since >=
             std::chrono::duration_cast<std::chrono::nanoseconds>(options_.lease_ttl).count();
}

std::string ReplicaHeartbeater::api_url() const {
  std::lock_guard lock(mu_);
  return beat_.api_url;
}

void ReplicaHeartbeater::BeatOnce() {
  ReplicaHeartbeat beat;
  {
    std::lock_guard lock(mu_);
    beat = beat_;
  }
  const int64_t sent = SteadyNowNs();
  Status status = store_->RecordHeartbeat(beat);
  if (status.ok()) {
    // Only ever extended: a slow answer must not shorten a newer renewal.
    const int64_t until =
        sent + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.lease_ttl).count();
    int64_t held = held_until_ns_.load();
    while (held != 0 && held < until && !held_until_ns_.compare_exchange_weak(held, until)) {
    }
    int64_t expected = 0;
    steady_since_ns_.compare_exchange_strong(expected, sent);
  } else {
    steady_since_ns_.store(0);
  }
  const bool lost = status.code() == StatusCode::kFailedPrecondition;
  {
    std::lock_guard lock(mu_);
    if (status.ok() && !health_.ok()) {
      spdlog::info("state store reachable again: replica {} is ready", replica_id_);
    } else if (!status.ok() && health_.ok()) {
      spdlog::error("state store heartbeat failed, replica {} is not ready: {}", replica_id_,
                    status.message());
    }
    health_ = status;
    if (lost) stopping_ = true;
  }
  if (lost) {
    held_until_ns_.store(0);
    if (options_.on_lease_lost) options_.on_lease_lost(status);
  }
}

void ReplicaHeartbeater::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const auto wait =
        health_.ok() ? options_.interval : std::min(options_.interval, kRetryInterval);
    if (cv_.wait_for(lock, wait, [&] { return stopping_ || beat_now_; })) {
      if (stopping_) return;
    }
    beat_now_ = false;
    lock.unlock();
    BeatOnce();
    lock.lock();
  }
}

}  // namespace airlock
