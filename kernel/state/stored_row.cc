#include "kernel/state/stored_row.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

namespace airlock {
namespace {

Result<RequestState> StoredState(const StoredRowView& row) {
  auto state = ParseRequestState(row.state);
  if (!state) {
    return Status::Internal("stored request " + std::string(row.id) + " has unknown state \"" +
                            std::string(row.state) + "\"");
  }
  return *state;
}

Status CorruptDocument(std::string_view id, size_t index) {
  return Status::Internal("stored request " + std::string(id) + " has a corrupt " +
                          kStoredDocumentNames[index] + " document");
}

bool HasNul(std::string_view text) {
  return text.find('\0') != std::string_view::npos;
}

// The length of the well-formed UTF-8 sequence starting at text[i], or 0
// when none does there (a stray byte, an overlong form, a surrogate, or a
// NUL, which text columns cannot hold either).
size_t Utf8SequenceAt(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return lead == 0 ? 0 : 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size() || byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return length;
}

}  // namespace

Result<SerializedRecord> SerializeForSave(const RequestRecord& record, size_t max_record_bytes,
                                          bool text_only) {
  if (record.id.empty() || record.id.size() > kMaxRequestIdBytes) {
    return Status::InvalidArgument("request id must be 1.." + std::to_string(kMaxRequestIdBytes) +
                                   " bytes");
  }
  if (record.version < 1) {
    return Status::InvalidArgument("request " + record.id + ": version must be at least 1");
  }
  SerializedRecord out;
  out.state = RequestStateName(record.state);
  if (out.state == "unknown") {
    return Status::InvalidArgument("request " + record.id + ": unknown state");
  }
  const nlohmann::json* documents[] = {&record.requester, &record.request, &record.decision,
                                       &record.approvals, &record.enclave, &record.tunnel};
  size_t total = record.id.size() + record.reason.size();
  try {
    out.requester_subject = record.requester_subject();
    out.tenant = RequesterTenant(record.requester);
    for (size_t i = 0; i < out.documents.size(); ++i) {
      out.documents[i] = documents[i]->dump();
      total += out.documents[i].size();
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument("request " + record.id + ": cannot serialize: " + e.what());
  }
  if (total > max_record_bytes) {
    return Status::InvalidArgument("request " + record.id +
                                   " is too large: " + std::to_string(total) + " bytes (limit " +
                                   std::to_string(max_record_bytes) + ")");
  }
  if (text_only && (HasNul(record.id) || HasNul(record.reason) || HasNul(out.requester_subject) ||
                    HasNul(out.tenant))) {
    return Status::InvalidArgument(
        "request id, reason, requester subject and tenant must not contain NUL bytes");
  }
  return out;
}

Status SaveConflict(const RequestRecord& record, std::optional<int64_t> stored_version) {
  if (record.version == 1) return Status::Conflict("request " + record.id + " already exists");
  if (!stored_version) {
    return Status::Conflict("request " + record.id + " does not exist (cannot save version " +
                            std::to_string(record.version) + ")");
  }
  return Status::Conflict("request " + record.id + " is at version " +
                          std::to_string(*stored_version) + ", cannot save version " +
                          std::to_string(record.version));
}

Result<RequestRecord> RecordFromRow(const StoredRowView& row) {
  RequestRecord record;
  record.id = std::string(row.id);
  AIRLOCK_ASSIGN_OR_RETURN(record.state, StoredState(row));
  record.version = row.version;
  record.created_at_us = row.created_at_us;
  record.updated_at_us = row.updated_at_us;
  record.deadline_us = row.deadline_us;
  record.reason = std::string(row.reason);
  nlohmann::json* documents[] = {&record.requester, &record.request, &record.decision,
                                 &record.approvals, &record.enclave, &record.tunnel};
  for (size_t i = 0; i < row.documents.size(); ++i) {
    const std::string_view text = row.documents[i];
    *documents[i] =
        nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (documents[i]->is_discarded()) return CorruptDocument(row.id, i);
  }
  return record;
}

Result<StoredRequestText> TextFromRow(const StoredRowView& row) {
  StoredRequestText text;
  text.id = std::string(row.id);
  AIRLOCK_ASSIGN_OR_RETURN(text.state, StoredState(row));
  text.version = row.version;
  text.requester_subject = std::string(row.requester_subject);
  text.created_at_us = row.created_at_us;
  text.updated_at_us = row.updated_at_us;
  text.deadline_us = row.deadline_us;
  text.reason = std::string(row.reason);
  std::string* documents[] = {&text.requester, &text.request, &text.decision,
                              &text.approvals, &text.enclave, &text.tunnel};
  for (size_t i = 0; i < row.documents.size(); ++i) {
    if (row.documents[i].empty()) return CorruptDocument(row.id, i);
    *documents[i] = std::string(row.documents[i]);
  }
  return text;
}

Result<OutboxMessage> OutboxFromRow(const StoredOutboxView& row) {
  OutboxMessage message;
  if (row.status == OutboxStatusName(OutboxStatus::kPending)) {
    message.status = OutboxStatus::kPending;
  } else if (row.status == OutboxStatusName(OutboxStatus::kDelivered)) {
    message.status = OutboxStatus::kDelivered;
  } else if (row.status == OutboxStatusName(OutboxStatus::kAbandoned)) {
    message.status = OutboxStatus::kAbandoned;
  } else {
    return Status::Internal("stored outbox message " + std::string(row.id) +
                            " has unknown status \"" + std::string(row.status) + "\"");
  }
  message.id = std::string(row.id);
  message.notifier = std::string(row.notifier);
  message.request_id = std::string(row.request_id);
  message.payload = std::string(row.payload);
  message.created_at_us = row.created_at_us;
  message.next_attempt_at_us = row.next_attempt_at_us;
  message.attempts = row.attempts;
  message.last_error = std::string(row.last_error);
  message.settled_at_us = row.settled_at_us;
  return message;
}

Status ValidateOutboxClaim(std::string_view notifier, std::string_view claimer, int64_t lease_us,
                           size_t limit) {
  if (notifier.empty() || notifier.size() > kMaxOutboxNotifierBytes) {
    return Status::InvalidArgument("notifier names are 1 to " +
                                   std::to_string(kMaxOutboxNotifierBytes) + " bytes");
  }
  if (claimer.empty() || claimer.size() > kMaxOutboxClaimerBytes) {
    return Status::InvalidArgument("outbox claimer names are 1 to " +
                                   std::to_string(kMaxOutboxClaimerBytes) + " bytes");
  }
  if (lease_us <= 0) return Status::InvalidArgument("an outbox claim's lease must be positive");
  if (limit < 1 || limit > kMaxOutboxClaim) {
    return Status::InvalidArgument("an outbox claim takes 1 to " + std::to_string(kMaxOutboxClaim) +
                                   " messages");
  }
  return Status::Ok();
}

bool CouldHoldOutboxClaim(std::string_view id, std::string_view claimer) {
  return !id.empty() && id.size() <= kMaxOutboxIdBytes && !claimer.empty() &&
         claimer.size() <= kMaxOutboxClaimerBytes;
}

int64_t OutboxClaimUntil(int64_t now_us, int64_t lease_us) {
  int64_t until = 0;
  if (__builtin_add_overflow(now_us, lease_us, &until)) {
    return lease_us > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return until;
}

std::string OutboxErrorText(std::string_view error) {
  std::string out;
  out.reserve(std::min(error.size(), kMaxOutboxErrorBytes));
  for (size_t i = 0; i < error.size();) {
    const size_t n = Utf8SequenceAt(error, i);
    const size_t taken = n == 0 ? 1 : n;
    if (out.size() + taken > kMaxOutboxErrorBytes) break;
    if (n == 0) {
      out += '?';
    } else {
      out.append(error.substr(i, n));
    }
    i += taken;
  }
  return out;
}

OutboxSettlement SettlementOf(OutboxOutcome outcome, int64_t next_attempt_at_us, int64_t now_us) {
  switch (outcome) {
    case OutboxOutcome::kDelivered:
      return {OutboxStatus::kDelivered, now_us, std::nullopt};
    case OutboxOutcome::kAbandoned:
      return {OutboxStatus::kAbandoned, now_us, std::nullopt};
    case OutboxOutcome::kRetry:
      break;
  }
  return {OutboxStatus::kPending, 0, next_attempt_at_us};
}

void AddOutboxCount(std::string_view status, int64_t count, OutboxCounts* counts) {
  if (status == OutboxStatusName(OutboxStatus::kPending)) counts->pending += count;
  if (status == OutboxStatusName(OutboxStatus::kDelivered)) counts->delivered += count;
  if (status == OutboxStatusName(OutboxStatus::kAbandoned)) counts->abandoned += count;
}

Status CheckOutboxTextOnly(const std::vector<OutboxMessage>& messages) {
  for (const OutboxMessage& m : messages) {
    if (HasNul(m.id) || HasNul(m.notifier) || HasNul(m.request_id) || HasNul(m.payload) ||
        HasNul(m.last_error)) {
      return Status::InvalidArgument("outbox messages must not contain NUL bytes");
    }
  }
  return Status::Ok();
}

}  // namespace airlock

namespace airlock {

std::string NonTerminalStatesSql() {
  std::string states;
  for (RequestState state : AllRequestStates()) {
    if (IsTerminal(state)) continue;
    if (!states.empty()) states += ", ";
    states += "'" + std::string(RequestStateName(state)) + "'";
  }
  return states;
}

}  // namespace airlock
