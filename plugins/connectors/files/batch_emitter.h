// Turns source rows into scoped record batches: evaluates the row filter,
// keeps the scoped columns, masks, and sends a batch to the sink every
// `batch_rows` rows (or sooner when a batch grows past kMaxBatchBytes, which
// also keeps every string column far below Arrow's 2 GiB offset limit). The
// sink is polled for cancellation before every batch and every `batch_rows`
// source rows, so a filter that rejects everything still stops promptly.
//
// Thread-safety: none; one emitter per pull.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/masking.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::connectors::files {

class BatchEmitter {
 public:
  static constexpr size_t kMaxBatchBytes = 64u << 20;

  BatchEmitter(const scope::ScopePlan& plan, sdk::BatchSink& sink, size_t batch_rows);

  // Sends the schema; call once before Add.
  Status Start();

  // `row[i]` is the Value of source column i (only plan.needed() columns are
  // read). Cancelled when the sink asks to stop.
  Status Add(const std::vector<scope::Value>& row);

  // Sends the last partial batch.
  Status Finish();

  uint64_t rows_sent() const { return rows_sent_; }

 private:
  Status Flush();
  Status CheckCancelled() const;
  Status AppendString(size_t column, std::string_view value);

  const scope::ScopePlan& plan_;
  sdk::BatchSink& sink_;
  size_t batch_rows_;
  arrow::RecordBatchBuilder builder_;
  scope::Masker masker_;
  std::string masked_;
  size_t pending_ = 0;        // rows in the builder
  size_t pending_bytes_ = 0;  // approximate payload bytes in the builder
  uint64_t source_rows_ = 0;  // rows seen, kept or not
  uint64_t rows_sent_ = 0;
  uint64_t bytes_sent_ = 0;
};

}  // namespace airlock::connectors::files
