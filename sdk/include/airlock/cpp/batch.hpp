// Record batch delivery across the boundary, both directions:
//  - BatchSink: the producer's (connector's) handle on a host sink.
//  - BatchConsumer + MakeBatchSink: how a consumer (the enclave runtime, a
//    tunnel reading query results) exposes itself as an airlock_type_batch_sink.
//  - KeyColumnsOf / EncodeKeyColumns: the "airlock.key" schema metadata;
//    KeyColumnsFromJson: the rule a key obeys, wherever it comes from.
// Ownership of schemas and arrays moves with every call (Arrow move semantics).
#pragma once

#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::sdk {

// Schema metadata key under which a connector reports a dataset's key: a
// JSON array of column names in key order, e.g. ["id"] or ["region", "id"].
// The named columns are unique together and never null in the source (a
// primary key); the enclave stores the table in their order. Consumers that
// do not know the key ignore it.
inline constexpr char kKeyColumnsMetadata[] = "airlock.key";
// The most key columns a consumer honours.
inline constexpr size_t kMaxKeyColumns = 32;

// The "airlock.key" value naming `columns`.
inline std::string EncodeKeyColumns(const std::vector<std::string>& columns) {
  return nlohmann::json(columns).dump();
}

// The most bytes of one key column's name.
inline constexpr size_t kMaxKeyColumnNameBytes = 1024;

// The key columns `doc` names, in key order. InvalidArgument, naming `where`,
// unless `doc` is an array of 1 to kMaxKeyColumns distinct strings of 1 to
// kMaxKeyColumnNameBytes bytes. One rule for every way a key arrives: the
// "airlock.key" a connector reports, the enclave spec and the kernel's
// configuration.
inline Result<std::vector<std::string>> KeyColumnsFromJson(const nlohmann::json& doc,
                                                           std::string_view where) {
  const std::string at(where);
  if (!doc.is_array() || doc.empty() || doc.size() > kMaxKeyColumns) {
    return Status::InvalidArgument(at + " must be an array of 1 to " +
                                   std::to_string(kMaxKeyColumns) + " column names");
  }
  std::vector<std::string> columns;
  columns.reserve(doc.size());
  for (const auto& item : doc) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty() ||
        item.get_ref<const std::string&>().size() > kMaxKeyColumnNameBytes) {
      return Status::InvalidArgument(at + " must hold column names of 1 to " +
                                     std::to_string(kMaxKeyColumnNameBytes) + " bytes");
    }
    const std::string& name = item.get_ref<const std::string&>();
    for (const auto& seen : columns) {
      if (seen == name) return Status::InvalidArgument(at + " names '" + name + "' twice");
    }
    columns.push_back(name);
  }
  return columns;
}

// The key columns `schema` reports: empty when its metadata has no
// "airlock.key". InvalidArgument when the metadata is malformed or its value
// breaks KeyColumnsFromJson's rule (JSON that does not parse included).
inline Result<std::vector<std::string>> KeyColumnsOf(const ArrowSchema& schema) {
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<std::string> value,
                           arrow::FindMetadata(schema, kKeyColumnsMetadata));
  if (!value.has_value()) return std::vector<std::string>{};
  const nlohmann::json doc = nlohmann::json::parse(*value, nullptr, /*allow_exceptions=*/false);
  return KeyColumnsFromJson(doc, kKeyColumnsMetadata);
}

class BatchSink {
 public:
  explicit BatchSink(const airlock_type_batch_sink* sink) : sink_(sink) {}

  Status SendSchema(arrow::OwnedSchema schema) {
    ArrowSchema raw;
    schema.MoveTo(&raw);
    const airlock_type_status rc = sink_->on_schema(sink_->host_data, &raw);
    if (raw.release != nullptr) raw.release(&raw);  // a sink that refused may not have taken it
    if (rc != AIRLOCK_OK) return Status(StatusCodeFromAbi(rc), "sink refused the schema");
    return Status::Ok();
  }

  Status SendBatch(arrow::OwnedArray batch) {
    ArrowArray raw;
    batch.MoveTo(&raw);
    const airlock_type_status rc = sink_->on_batch(sink_->host_data, &raw);
    if (raw.release != nullptr) raw.release(&raw);
    if (rc != AIRLOCK_OK) return Status(StatusCodeFromAbi(rc), "sink refused the batch");
    return Status::Ok();
  }

  bool cancelled() const {
    return sink_->is_cancelled != nullptr && sink_->is_cancelled(sink_->host_data) != 0;
  }

  void Progress(uint64_t rows, uint64_t bytes) {
    if (AIRLOCK_ABI_HAS(sink_, airlock_type_batch_sink, on_progress) &&
        sink_->on_progress != nullptr) {
      sink_->on_progress(sink_->host_data, rows, bytes);
    }
  }

 private:
  const airlock_type_batch_sink* sink_;
};

class BatchConsumer {
 public:
  virtual ~BatchConsumer() = default;
  virtual Status OnSchema(arrow::OwnedSchema schema) = 0;
  virtual Status OnBatch(arrow::OwnedArray batch) = 0;
  virtual bool IsCancelled() { return false; }
  virtual void OnProgress(uint64_t /*rows*/, uint64_t /*bytes*/) {}
};

// An ABI sink forwarding to `consumer`; valid while `consumer` lives.
inline airlock_type_batch_sink MakeBatchSink(BatchConsumer& consumer) {
  airlock_type_batch_sink sink;
  std::memset(&sink, 0, sizeof(sink));
  sink.size = sizeof(sink);
  sink.host_data = &consumer;
  sink.on_schema = [](void* data, ArrowSchema* schema) -> airlock_type_status {
    try {
      auto owned = arrow::OwnedSchema::TakeFrom(schema);
      return static_cast<airlock_type_status>(
          static_cast<BatchConsumer*>(data)->OnSchema(std::move(owned)).code());
    } catch (...) {
      return AIRLOCK_ERR_INTERNAL;
    }
  };
  sink.on_batch = [](void* data, ArrowArray* batch) -> airlock_type_status {
    try {
      auto owned = arrow::OwnedArray::TakeFrom(batch);
      return static_cast<airlock_type_status>(
          static_cast<BatchConsumer*>(data)->OnBatch(std::move(owned)).code());
    } catch (...) {
      return AIRLOCK_ERR_INTERNAL;
    }
  };
  sink.is_cancelled = [](void* data) -> int32_t {
    try {
      return static_cast<BatchConsumer*>(data)->IsCancelled() ? 1 : 0;
    } catch (...) {
      return 1;
    }
  };
  sink.on_progress = [](void* data, uint64_t rows, uint64_t bytes) {
    try {
      static_cast<BatchConsumer*>(data)->OnProgress(rows, bytes);
    } catch (...) {
    }
  };
  return sink;
}

}  // namespace airlock::sdk
