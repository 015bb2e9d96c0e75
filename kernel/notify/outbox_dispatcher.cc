#include "kernel/notify/outbox_dispatcher.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kernel/audit/audit_log.h"
#include "kernel/core/metrics.h"
#include "kernel/notify/notification_composer.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/state/state_store.h"

namespace airlock {

using nlohmann::json;

int64_t OutboxBackoffMs(int64_t attempt, int64_t initial_ms, int64_t max_ms, uint64_t random) {
  int64_t backoff = std::max<int64_t>(initial_ms, 1);
  for (int64_t i = 1; i < attempt && backoff < max_ms; ++i) backoff *= 2;
  backoff = std::min(backoff, max_ms);
  const int64_t half = backoff / 2;
  return backoff - half + static_cast<int64_t>(random % static_cast<uint64_t>(half + 1));
}

namespace {

constexpr int64_t kMicros = 1000000;

// Failures that may pass: the message is tried again later.
bool Retryable(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded ||
         code == StatusCode::kResourceExhausted;
}

}  // namespace

class OutboxDispatcher::Impl {
 public:
  Impl(StateStore* store, AuditLog* audit, Metrics* metrics, Notifiers notifiers,
       OutboxDispatcherOptions options, std::function<int64_t()> now_us)
      : store_(store),
        audit_(audit),
        metrics_(metrics),
        notifiers_(std::move(notifiers)),
        options_(std::move(options)),
        now_us_(std::move(now_us)),
        random_(std::random_device{}()) {}

  ~Impl() { Stop(); }

  void Start() {
    std::lock_guard lock(mu_);
    if (!workers_.empty() || stopping_) return;
    // This kernel's earlier run is gone: what it was delivering goes again
    // now, under the same ids, rather than when its claims run out.
    auto released = store_->ReleaseOutboxClaims(options_.claimer);
    if (!released.ok()) {
      spdlog::warn("cannot release this kernel's earlier outbox claims: {}",
                   released.status().ToString());
    } else if (*released > 0) {
      spdlog::info("{} notification(s) in delivery when this kernel last stopped go again",
                   *released);
    }
    for (const auto& [name, plugin] : notifiers_) {
      workers_.emplace_back([this, name = name, plugin = plugin] { Work(name, *plugin); });
    }
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    workers_.clear();
  }

  void Wake() {
    {
      std::lock_guard lock(mu_);
      ++wakes_;
    }
    cv_.notify_all();
  }

 private:
  void Work(const std::string& name, const plugin_host::NotifierPlugin& plugin) {
    constexpr int64_t kNoRetry = INT64_MAX;
    uint64_t seen_wakes = 0;
    int64_t next_purge_us = 0;
    int64_t next_retry_us = kNoRetry;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        seen_wakes = wakes_;
      }
      const int64_t now = now_us_();
      auto claimed = store_->ClaimOutbox(name, options_.claimer, now,
                                         options_.claim_lease_ms * 1000, options_.claim_batch);
      if (!claimed.ok()) {
        spdlog::warn("notifier '{}': cannot read the outbox: {}", name,
                     claimed.status().ToString());
      } else {
        for (OutboxMessage& message : *claimed) {
          if (Stopping()) return;
          if (auto retry_at = Deliver(name, plugin, message)) {
            next_retry_us = std::min(next_retry_us, *retry_at);
          }
        }
      }
      if (now >= next_purge_us) {
        Purge(now);
        next_purge_us = now + 3600 * kMicros;
      }
      // A full batch means more may be due now: claim again at once.
      if (claimed.ok() && claimed->size() == options_.claim_batch) continue;
      // Sleep until the next poll, or until a retry this worker scheduled
      // is due if that comes first (so backoff is kept, not rounded up).
      int64_t wait_us = options_.poll_interval_ms * 1000;
      if (next_retry_us != kNoRetry) {
        wait_us = std::clamp<int64_t>(next_retry_us - now_us_(), 1000, wait_us);
        next_retry_us = kNoRetry;
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::microseconds(wait_us),
                   [&] { return stopping_ || wakes_ != seen_wakes; });
    }
  }

  uint64_t Draw() {
    std::lock_guard lock(random_mu_);
    return random_();
  }

  bool Stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  // Delivers one claimed message and settles it; returns when it is to be
  // tried again, if it is.
  std::optional<int64_t> Deliver(const std::string& name, const plugin_host::NotifierPlugin& plugin,
                                 const OutboxMessage& message) {
    json document = json::parse(message.payload, nullptr, /*allow_exceptions=*/false);
    if (!document.is_object()) {
      Settle(name, message, OutboxOutcome::kAbandoned, 0, "stored notification is not JSON");
      return std::nullopt;
    }
    if (document.value("event", "") == kExpiringEvent && !ExpiringStillTrue(message, document)) {
      // The window ended early or moved: the notice would no longer be true.
      Settle(name, message, OutboxOutcome::kAbandoned, 0, "request no longer ends then");
      return std::nullopt;
    }
    document["attempt"] = message.attempts + 1;
    const Status delivered =
        plugin.Deliver(document.dump(-1, ' ', false, json::error_handler_t::replace));
    if (delivered.ok()) {
      Settle(name, message, OutboxOutcome::kDelivered, 0, "");
      return std::nullopt;
    }
    const int64_t attempts = message.attempts + 1;
    if (Retryable(delivered.code()) && attempts < options_.max_attempts) {
      const int64_t backoff_ms =
          OutboxBackoffMs(attempts, options_.initial_backoff_ms, options_.max_backoff_ms, Draw());
      spdlog::info("notifier '{}': {} not delivered (attempt {}), again in {} ms: {}", name,
                   message.id, attempts, backoff_ms, delivered.message());
      const int64_t retry_at = now_us_() + backoff_ms * 1000;
      Settle(name, message, OutboxOutcome::kRetry, retry_at, delivered.message());
      return retry_at;
    }
    Settle(name, message, OutboxOutcome::kAbandoned, 0, delivered.message());
    return std::nullopt;
  }

  bool ExpiringStillTrue(const OutboxMessage& message, const json& document) {
    auto loaded = store_->Load(message.request_id);
    if (!loaded.ok()) return true;  // cannot tell: better told than lost
    return loaded->has_value() && NotificationComposer::ExpiringStillTrue(**loaded, document);
  }

  void Settle(const std::string& name, const OutboxMessage& message, OutboxOutcome outcome,
              int64_t next_attempt_at_us, const std::string& error) {
    auto settled = store_->SettleOutbox(message.id, options_.claimer, outcome, next_attempt_at_us,
                                        error, now_us_());
    if (!settled.ok()) {
      // The claim runs out and the message goes again: at least once.
      spdlog::warn("notifier '{}': cannot record the outcome of {}: {}", name, message.id,
                   settled.status().ToString());
      return;
    }
    if (!*settled) return;  // another claimer took it over meanwhile
    const char* outcome_name = outcome == OutboxOutcome::kDelivered ? "delivered"
                               : outcome == OutboxOutcome::kRetry   ? "retried"
                                                                    : "abandoned";
    if (metrics_ != nullptr) {
      metrics_
          ->Get("airlock_notifications_total", "Notification deliveries by outcome", "counter",
                "notifier=\"" + name + "\",outcome=\"" + outcome_name + "\"")
          .Add();
      if (outcome == OutboxOutcome::kDelivered) {
        // The notifier's lag: from the change being saved to its delivery.
        metrics_
            ->GetHistogram("airlock_notification_delivery_seconds",
                           "From a notification being queued until it was delivered",
                           "notifier=\"" + name + "\"", Metrics::PhaseBuckets())
            .Observe(static_cast<double>(std::max<int64_t>(0, now_us_() - message.created_at_us)) /
                     1e6);
      }
    }
    if (outcome != OutboxOutcome::kAbandoned) return;
    spdlog::warn("notifier '{}': {} abandoned after {} attempt(s): {}", name, message.id,
                 message.attempts + 1, error);
    const Status audited = audit_->Append({{"event", "notification.abandoned"},
                                           {"notifier", name},
                                           {"notification_id", message.id},
                                           {"request_id", message.request_id},
                                           {"attempts", message.attempts + 1},
                                           {"reason", error}});
    if (!audited.ok()) {
      spdlog::error("notifier '{}': cannot audit abandoning {}: {}", name, message.id,
                    audited.ToString());
    }
  }

  void Purge(int64_t now) {
    std::lock_guard lock(purge_mu_);  // one worker purges for all
    auto purged = store_->PurgeOutbox(now - options_.retention_seconds * kMicros);
    if (!purged.ok()) {
      spdlog::warn("cannot purge old notifications: {}", purged.status().ToString());
    }
  }

  StateStore* store_;
  AuditLog* audit_;
  Metrics* metrics_;
  Notifiers notifiers_;
  OutboxDispatcherOptions options_;
  std::function<int64_t()> now_us_;
  std::mutex random_mu_;
  std::mt19937_64 random_;  // jitter; guarded by random_mu_

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t wakes_ = 0;
  std::vector<std::thread> workers_;
  std::mutex purge_mu_;
};

OutboxDispatcher::OutboxDispatcher(StateStore* store, AuditLog* audit, Metrics* metrics,
                                   Notifiers notifiers, OutboxDispatcherOptions options,
                                   std::function<int64_t()> now_us)
    : impl_(std::make_unique<Impl>(store, audit, metrics, std::move(notifiers), std::move(options),
                                   std::move(now_us))) {}

OutboxDispatcher::~OutboxDispatcher() = default;

void OutboxDispatcher::Start() {
  impl_->Start();
}
void OutboxDispatcher::Stop() {
  impl_->Stop();
}
void OutboxDispatcher::Wake() {
  impl_->Wake();
}

}  // namespace airlock
