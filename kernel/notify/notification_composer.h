// What the kernel tells people about a request, and whom: turns a saved
// transition into outbox messages (one per notifier that wants the event
// and the audience), queued in the same transaction as the transition.
//
// The policy decides who is told, not the notifier: approvers are the
// approval groups of the request's decision; the requester is the principal
// who asked. Each message's id is its idempotency key, derived from the
// request, the version the transition saved and the notifier, so a
// transition is told once per notifier whatever is retried.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/core/config.h"
#include "kernel/lifecycle/request_record.h"
#include "kernel/state/state_store.h"

namespace airlock {

inline constexpr const char* kExpiringEvent = "request.expiring";
// A request closed by someone other than its requester (an approver or an
// admin revoking access).
inline constexpr const char* kRevokedEvent = "request.revoked";
// A ready request's window: its requester asked for more time, which waits
// for approval; it was extended; or the extension was refused.
inline constexpr const char* kExtensionRequestedEvent = "request.extension_requested";
inline constexpr const char* kExtendedEvent = "request.extended";
inline constexpr const char* kExtensionDeniedEvent = "request.extension_denied";

class NotificationComposer {
 public:
  explicit NotificationComposer(const NotificationsConfig& config);

  // True when no notifier is configured (nothing is ever composed).
  bool empty() const { return routes_.empty(); }

  // The messages telling that `record` (as just saved) moved from `from` to
  // its state; `actor` is who moved it (nullopt: the kernel itself). A
  // requester is not told of what they did themselves or were answered at
  // once (a decision the policy made while they waited). When the record
  // becomes ready, the "ends soon" notice is queued too, due
  // expiring_notice_seconds before the window ends.
  std::vector<OutboxMessage> ForTransition(const RequestRecord& record, RequestState from,
                                           const std::optional<std::string>& actor) const;

  // The messages telling of `event` (one of the extension events above),
  // which `record` (as just saved, still ready) went through; `actor` as
  // for ForTransition. An extended window gets its own "ends soon" notice
  // (the earlier one no longer tells the truth and is dropped).
  std::vector<OutboxMessage> ForEvent(const RequestRecord& record, const std::string& event,
                                      const std::optional<std::string>& actor) const;

  // True when the "ends soon" `notification` still tells the truth about
  // `record`: it is still ready, and its window still ends when it said.
  static bool ExpiringStillTrue(const RequestRecord& record, const nlohmann::json& notification);

 private:
  struct Route {
    std::string notifier;
    std::vector<std::string> events;     // empty: all
    std::vector<std::string> audiences;  // empty: both
    std::vector<std::string> tenants;    // empty or "*": every request's
  };

  void ComposeExpiring(const RequestRecord& record, std::vector<OutboxMessage>* out) const;
  void Compose(const RequestRecord& record, const std::string& event, const std::string& audience,
               const std::string& key, int64_t due_us, std::vector<OutboxMessage>* out) const;
  nlohmann::json Document(const RequestRecord& record, const std::string& event,
                          const std::string& audience) const;

  std::vector<Route> routes_;
  std::string console_url_;
  int64_t expiring_notice_us_;
};

}  // namespace airlock
