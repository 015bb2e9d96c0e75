// What every state store backend does the same way around its storage:
// checking and serialising a record for Save, the Conflict a refused Save
// answers, and turning a stored row (text columns) back into a record or a
// text snapshot. Internal to kernel/state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/state/state_store.h"

namespace airlock {

// Names of the six JSON documents, in column order.
inline constexpr std::array<const char*, 6> kStoredDocumentNames = {
    "requester", "request", "decision", "approvals", "enclave", "tunnel"};

// A record checked and serialised for Save.
struct SerializedRecord {
  std::string_view state;  // snake_case name (static storage)
  std::string requester_subject;
  std::string tenant;                    // RequesterTenant(record.requester)
  std::array<std::string, 6> documents;  // compact dump() of each document
};

// InvalidArgument for an empty or oversized id, a version below 1, an
// unknown state, a document that cannot be serialised (invalid UTF-8), or a
// record over `max_record_bytes` counting id, reason and documents. With
// `text_only` (backends whose text columns cannot hold them), also for a
// NUL byte in the id, reason, requester subject or tenant.
Result<SerializedRecord> SerializeForSave(const RequestRecord& record, size_t max_record_bytes,
                                          bool text_only);

// The Conflict a Save of `record` gets when the stored version is
// `stored_version` (nullopt: no such request).
Status SaveConflict(const RequestRecord& record, std::optional<int64_t> stored_version);

// One stored row as its columns read it.
struct StoredRowView {
  std::string_view id;
  std::string_view state;
  int64_t version = 0;
  std::string_view requester_subject;
  int64_t created_at_us = 0;
  int64_t updated_at_us = 0;
  int64_t deadline_us = 0;
  std::string_view reason;
  std::array<std::string_view, 6> documents;
};

// Internal error naming the request for an unknown state or a corrupt document.
Result<RequestRecord> RecordFromRow(const StoredRowView& row);
Result<StoredRequestText> TextFromRow(const StoredRowView& row);

// --- the notification outbox ------------------------------------------------

// Column order shared by every outbox SELECT (StoredOutboxView).
inline constexpr const char* kOutboxColumns =
    "id, notifier, request_id, payload, status, created_at_us, next_attempt_at_us, attempts, "
    "last_error, settled_at_us";

// One stored outbox row as its columns read it, in kOutboxColumns order.
struct StoredOutboxView {
  std::string_view id;
  std::string_view notifier;
  std::string_view request_id;
  std::string_view payload;
  std::string_view status;
  int64_t created_at_us = 0;
  int64_t next_attempt_at_us = 0;
  int64_t attempts = 0;
  std::string_view last_error;
  int64_t settled_at_us = 0;
};

// Internal error naming the message for an unknown status.
Result<OutboxMessage> OutboxFromRow(const StoredOutboxView& row);

// Longest claimer name a claim accepts.
inline constexpr size_t kMaxOutboxClaimerBytes = 512;

// InvalidArgument for an empty or oversized notifier or claimer, a lease
// that is not positive, or a limit outside 1..kMaxOutboxClaim.
Status ValidateOutboxClaim(std::string_view notifier, std::string_view claimer, int64_t lease_us,
                           size_t limit);

// Whether SettleOutbox can name a claim at all: an id and claimer no claim
// could have been taken with hold none (the settle answers false).
bool CouldHoldOutboxClaim(std::string_view id, std::string_view claimer);

// When a claim taken at `now_us` for `lease_us` runs out (saturating).
int64_t OutboxClaimUntil(int64_t now_us, int64_t lease_us);

// `error` as a settled message keeps it: cut to at most kMaxOutboxErrorBytes,
// never inside a UTF-8 sequence, with each byte that is not part of valid
// UTF-8 (or is NUL) replaced by '?', so that any text column holds it.
std::string OutboxErrorText(std::string_view error);

// What a settled delivery leaves in its row: status, settled_at_us, and
// next_attempt_at_us (kept as stored when the message is settled for good).
struct OutboxSettlement {
  OutboxStatus status = OutboxStatus::kPending;
  int64_t settled_at_us = 0;
  std::optional<int64_t> next_attempt_at_us;
};
OutboxSettlement SettlementOf(OutboxOutcome outcome, int64_t next_attempt_at_us, int64_t now_us);

// Adds `count` messages of stored status `status` to `counts` (an unknown
// status counts nowhere).
void AddOutboxCount(std::string_view status, int64_t count, OutboxCounts* counts);

// InvalidArgument for a message a text column cannot hold as given (a NUL
// byte in any of its strings), for backends whose text columns cannot.
Status CheckOutboxTextOnly(const std::vector<OutboxMessage>& messages);

}  // namespace airlock

namespace airlock {

// The non-terminal states as a quoted SQL list ('submitted', ...), for the
// LoadActive queries (our own snake_case constants: no quoting issues).
std::string NonTerminalStatesSql();

}  // namespace airlock
