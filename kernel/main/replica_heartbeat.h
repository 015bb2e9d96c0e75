// Keeps this kernel replica's heartbeat in the state store: one beat when it
// starts (so it is listed at once), then one every `interval`, or every
// second while beats fail. The last beat's outcome is the replica's state
// health: a replica whose store cannot be written is not ready (/healthz).
//
// Thread-safety: health() and beat() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "airlock/cpp/status.hpp"
#include "kernel/state/state_store.h"

namespace airlock {

class ReplicaHeartbeater {
 public:
  // Beats once before it returns; `store` must outlive the heartbeater.
  ReplicaHeartbeater(StateStore* store, ReplicaHeartbeat beat, std::chrono::milliseconds interval);
  // Stops beating (the last beat stays in the store: others see it age).
  ~ReplicaHeartbeater();
  ReplicaHeartbeater(const ReplicaHeartbeater&) = delete;
  ReplicaHeartbeater& operator=(const ReplicaHeartbeater&) = delete;

  // Ok when the last beat was stored, else why not.
  Status health() const;
  const ReplicaHeartbeat& beat() const { return beat_; }
  std::chrono::milliseconds interval() const { return interval_; }

 private:
  void BeatOnce();
  void Loop();

  StateStore* const store_;
  const ReplicaHeartbeat beat_;
  const std::chrono::milliseconds interval_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  Status health_;          // guarded by mu_
  std::thread thread_;
};

}  // namespace airlock
