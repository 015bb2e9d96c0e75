// Keeps this kernel replica's lease in the state store. Start acquires it
// (an epoch above any this replica held before, fencing an earlier
// incarnation); then a beat every `interval`, or every second while beats
// fail, renews it. The last beat's outcome is the replica's state health: a
// replica whose store cannot be written is not ready (/healthz).
//
// The lease is held while the last successful renewal was sent less than the
// lease TTL ago, by this process's monotonic clock: a replica paused or cut
// off for longer stops acting on its requests on its own, before any beat
// tells it that a survivor fenced it. A renewal refused because the epoch
// moved on means a survivor took the requests over: `on_lease_lost` runs
// once, on the heartbeat thread, and beating stops.
//
// Thread-safety: every const method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "airlock/cpp/status.hpp"
#include "kernel/state/state_store.h"

namespace airlock {

class ReplicaHeartbeater {
 public:
  struct Options {
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds lease_ttl{3000};
    std::function<void(const Status& why)> on_lease_lost;
  };

  // Acquires the lease (Unavailable and the like when the store cannot be
  // reached: a kernel does not start without its state); `store` must
  // outlive the heartbeater.
  static Result<std::unique_ptr<ReplicaHeartbeater>> Start(StateStore* store, ReplicaHeartbeat beat,
                                                           Options options);
  // Stops beating; the lease is left to age unless Release() gave it up.
  ~ReplicaHeartbeater();
  ReplicaHeartbeater(const ReplicaHeartbeater&) = delete;
  ReplicaHeartbeater& operator=(const ReplicaHeartbeater&) = delete;

  // Where this replica's API listens, once known; beats at once with it.
  void SetApiUrl(std::string api_url);
  // Stops beating and gives the lease up, so that survivors take this
  // replica's requests over without waiting for the lease to age.
  void Release();

  // Ok when the last beat was stored, else why not.
  Status health() const;
  // True while this replica may act on the requests it owns.
  bool LeaseHeld() const;
  // True when every beat for at least one lease TTL was stored. Only such a
  // replica fences others: after an outage of the database every replica's
  // beat is old, and the first one back must not take the others over
  // before they had the time to renew.
  bool SteadyForATtl() const;
  const std::string& replica_id() const { return replica_id_; }
  int64_t lease_epoch() const { return lease_epoch_; }
  std::string api_url() const;
  std::chrono::milliseconds interval() const { return options_.interval; }
  std::chrono::milliseconds lease_ttl() const { return options_.lease_ttl; }

 private:
  ReplicaHeartbeater(StateStore* store, ReplicaHeartbeat beat, Options options);
  void BeatOnce();
  void Loop();
  void StopThread();
  static int64_t SteadyNowNs();

  StateStore* const store_;
  const Options options_;
  const std::string replica_id_;
  const int64_t lease_epoch_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  ReplicaHeartbeat beat_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  bool beat_now_ = false;  // guarded by mu_
  Status health_;          // guarded by mu_
  // Monotonic time (ns) until which the lease holds; 0 once lost.
  std::atomic<int64_t> held_until_ns_{0};
  // Monotonic time (ns) since which every beat was stored; 0 after a failure.
  std::atomic<int64_t> steady_since_ns_{0};
  std::thread thread_;
};

}  // namespace airlock
