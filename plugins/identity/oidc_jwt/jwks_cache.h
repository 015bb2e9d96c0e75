// The issuer's keys, cached. A refresh is asked for when a token names a key
// the cache does not hold (the issuer rotated its keys) or when the keys are
// older than their maximum age. Refreshes are rate-limited: at most one fetch
// per `refresh_min_interval_seconds` (host clock), so tokens with made-up
// kids cannot turn this provider into a traffic amplifier against the
// issuer; callers that arrive while a fetch is in flight wait for it and
// share its result instead of starting their own. A failed fetch keeps the
// previous keys.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "airlock/cpp/host.hpp"
#include "jwk.h"
#include "jwks_source.h"

namespace airlock::identity::oidc_jwt {

class JwksCache {
 public:
  struct Snapshot {
    std::shared_ptr<const KeySet> keys;  // never null (possibly empty)
    std::string last_error;              // why the latest fetch failed, or empty
  };

  JwksCache(std::unique_ptr<JwksSource> source, JwksSourceConfig config,
            std::function<int64_t()> now_micros, sdk::Host host);

  // The cached keys, refreshed first when they are older than max_age (and
  // the rate limit allows a fetch).
  Snapshot Keys();

  // Fetches again unless a fetch happened less than the minimum interval ago;
  // joins a fetch already in flight. Returns the keys afterwards.
  Snapshot Refresh();

  const JwksSource& source() const { return *source_; }

 private:
  Snapshot SnapshotLocked() const;
  void FetchAndStore(std::unique_lock<std::mutex>& lock, int64_t now);

  const std::unique_ptr<JwksSource> source_;
  const JwksSourceConfig config_;
  const std::function<int64_t()> now_micros_;
  const sdk::Host host_;

  mutable std::mutex mutex_;
  std::condition_variable fetched_;
  std::shared_ptr<const KeySet> keys_;          // GUARDED_BY(mutex_)
  std::string last_error_;                      // GUARDED_BY(mutex_)
  std::optional<int64_t> last_attempt_micros_;  // GUARDED_BY(mutex_)
  std::optional<int64_t> last_success_micros_;  // GUARDED_BY(mutex_)
  bool fetching_ = false;                       // GUARDED_BY(mutex_)
  uint64_t generation_ = 0;                     // GUARDED_BY(mutex_): completed fetches
};

}  // namespace airlock::identity::oidc_jwt
