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
  std::array<std::string, 6> documents;  // compact dump() of each document
};

// InvalidArgument for an empty or oversized id, a version below 1, an
// unknown state, a document that cannot be serialised (invalid UTF-8), or a
// record over `max_record_bytes` counting id, reason and documents. With
// `text_only` (backends whose text columns cannot hold them), also for a
// NUL byte in the id, reason or requester subject.
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

}  // namespace airlock

namespace airlock {

// The non-terminal states as a quoted SQL list ('submitted', ...), for the
// LoadActive queries (our own snake_case constants: no quoting issues).
std::string NonTerminalStatesSql();

}  // namespace airlock
