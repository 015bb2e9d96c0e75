// Delivers the notification outbox (StateStore::ClaimOutbox) through the
// notifier plugins: one worker thread per notifier, so that a receiver that
// is down or slow holds up nothing but its own notifications.
//
// Each worker claims what is due for its notifier, hands each message to
// the plugin and settles it: delivered; or tried again later, with
// exponential backoff and jitter, when the plugin says the failure may
// pass; or abandoned (audited as notification.abandoned) when the receiver
// refused it for good or the attempts ran out. Delivery is at least once:
// a kernel that dies between the receiver's answer and the settle leaves
// the claim to run out, and the message goes again under the same id (the
// receiver's idempotency key). Replicas sharing a PostgreSQL store share
// the outbox; a claim keeps the others off a message while it is tried.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "airlock/cpp/status.hpp"

namespace airlock {

class AuditLog;
class Metrics;
class StateStore;
namespace plugin_host {
class NotifierPlugin;
}

struct OutboxDispatcherOptions {
  std::string claimer;  // this kernel's instance id
  int64_t max_attempts = 12;
  int64_t initial_backoff_ms = 1000;
  int64_t max_backoff_ms = 300000;
  // How long a claim keeps other claimers off a message; longer than any
  // plugin's own timeout, so a slow delivery is not sent twice at once.
  int64_t claim_lease_ms = 120000;
  // How often an idle worker looks for due messages it was not woken for
  // (queued by another replica, due at a later time, a claim run out).
  int64_t poll_interval_ms = 1000;
  // Delivered and abandoned messages older than this are purged.
  int64_t retention_seconds = 7 * 86400;
  size_t claim_batch = 32;
};

class OutboxDispatcher {
 public:
  using Notifiers = std::map<std::string, const plugin_host::NotifierPlugin*>;

  // Every pointer must outlive the dispatcher. `now_us` is the wall clock.
  OutboxDispatcher(StateStore* store, AuditLog* audit, Metrics* metrics, Notifiers notifiers,
                   OutboxDispatcherOptions options, std::function<int64_t()> now_us);
  ~OutboxDispatcher();  // Stop()
  OutboxDispatcher(const OutboxDispatcher&) = delete;
  OutboxDispatcher& operator=(const OutboxDispatcher&) = delete;

  // Starts one worker per notifier. Nothing happens before.
  void Start();
  // Stops the workers after the deliveries in flight end.
  void Stop();
  // Something was queued: workers look now rather than at their next poll.
  void Wake();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The backoff before try `attempt` + 1 after `attempt` failed tries (1..):
// initial * 2^(attempt-1), capped at max, then a random point in its
// upper half (jitter, so that retries after an outage do not come in step).
int64_t OutboxBackoffMs(int64_t attempt, int64_t initial_ms, int64_t max_ms, uint64_t random);

}  // namespace airlock
