#include "jwks_cache.h"

#include <openssl/err.h>

namespace airlock::identity::oidc_jwt {
namespace {

constexpr int64_t kMicros = 1000000;

}  // namespace

JwksCache::JwksCache(std::unique_ptr<JwksSource> source, JwksSourceConfig config,
                     std::function<int64_t()> now_micros, sdk::Host host)
    : source_(std::move(source)),
      config_(std::move(config)),
      now_micros_(std::move(now_micros)),
      host_(std::move(host)),
      keys_(std::make_shared<KeySet>()) {}

JwksCache::Snapshot JwksCache::SnapshotLocked() const {
  return {keys_, last_error_};
}

JwksCache::Snapshot JwksCache::Keys() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool never = !last_success_micros_.has_value();
    const bool stale = config_.max_age_seconds > 0 && last_success_micros_ &&
                       now_micros_() - *last_success_micros_ >= config_.max_age_seconds * kMicros;
    if (!never && !stale) return SnapshotLocked();
  }
  return Refresh();
}

JwksCache::Snapshot JwksCache::Refresh() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (fetching_) {
    // Share the fetch in flight.
    const uint64_t generation = generation_;
    fetched_.wait(lock, [&] { return generation_ != generation; });
    return SnapshotLocked();
  }
  const int64_t now = now_micros_();
  if (last_attempt_micros_ &&
      now - *last_attempt_micros_ < config_.refresh_min_interval_seconds * kMicros) {
    return SnapshotLocked();  // rate-limited: answer with what we have
  }
  FetchAndStore(lock, now);
  return SnapshotLocked();
}

void JwksCache::FetchAndStore(std::unique_lock<std::mutex>& lock, int64_t now) {
  fetching_ = true;
  last_attempt_micros_ = now;
  lock.unlock();

  std::shared_ptr<const KeySet> fresh;
  std::string error;
  Result<std::string> text = source_->Fetch();
  if (!text.ok()) {
    error = text.status().message();
  } else {
    Result<KeySet> parsed = ParseJwks(*text, config_.max_keys);
    if (!parsed.ok()) {
      error = source_->Describe() + ": " + parsed.status().message();
    } else {
      for (const auto& line : parsed->skipped) host_.Warn("JWKS key skipped: " + line);
      fresh = std::make_shared<const KeySet>(std::move(parsed).value());
    }
  }
  ERR_clear_error();  // leave no OpenSSL error behind on this thread
  if (!error.empty()) {
    host_.Warn("JWKS refresh failed; keeping the previous keys: " + error);
  } else {
    host_.Info("loaded " + std::to_string(fresh->keys.size()) + " key(s) from " +
               source_->Describe());
  }

  lock.lock();
  if (fresh) {
    keys_ = std::move(fresh);
    last_error_.clear();
    last_success_micros_ = now;
  } else {
    last_error_ = std::move(error);
  }
  fetching_ = false;
  ++generation_;
  fetched_.notify_all();
}

}  // namespace airlock::identity::oidc_jwt
