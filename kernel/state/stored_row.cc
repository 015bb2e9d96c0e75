#include "kernel/state/stored_row.h"

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
  if (text_only && (HasNul(record.id) || HasNul(record.reason) || HasNul(out.requester_subject))) {
    return Status::InvalidArgument(
        "request id, reason and requester subject must not contain "
        "NUL bytes");
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
