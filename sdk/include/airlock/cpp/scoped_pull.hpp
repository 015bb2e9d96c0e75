// The loop every connector writes, once: for each row a source yields,
// keep it only if the scope's row filter matches, deliver only the scope's
// columns, mask the masked ones, append typed values to batches of a bounded
// size, and between batches honour cancellation and report progress.
//
//   AIRLOCK_ASSIGN_OR_RETURN(auto writer, sdk::ScopedBatchWriter::Start(fields, spec.scope, sink));
//   std::vector<scope::Value> cells(fields.size());
//   while (source.Next()) {
//     for (size_t c = 0; c < fields.size(); ++c) {
//       if (writer.needed()[c]) cells[c] = source.Cell(c);   // read only what the scope needs
//     }
//     AIRLOCK_RETURN_IF_ERROR(writer.Add(cells));
//   }
//   return writer.Finish();
//
// A connector that follows it cannot deliver a column, a row or an
// unmasked value the policy excluded: the scope (columns, masks, row
// filter) is validated against the source's columns first, and anything
// unknown fails the pull (fail closed). Header-only; needs OpenSSL's
// libcrypto for the masks (airlock/cpp/masking.hpp; link OpenSSL::Crypto).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/masking.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::sdk {

// Appends `cell` (of its own type; NULL when null) to column `col`.
inline void AppendValue(arrow::RecordBatchBuilder& builder, size_t col, const scope::Value& cell) {
  switch (cell.type) {
    case arrow::Type::kNull:
      builder.AppendNull(col);
      return;
    case arrow::Type::kBool:
      builder.AppendBool(col, cell.b);
      return;
    case arrow::Type::kInt64:
      builder.AppendInt64(col, cell.i);
      return;
    case arrow::Type::kFloat64:
      builder.AppendDouble(col, cell.d);
      return;
    case arrow::Type::kDate32:
      builder.AppendDate32(col, static_cast<int32_t>(cell.i));
      return;
    case arrow::Type::kTimestampMicros:
      builder.AppendTimestamp(col, cell.i);
      return;
    case arrow::Type::kTime64Micros:
      builder.AppendTime(col, cell.i);
      return;
    default:
      builder.AppendString(col, cell.s);
  }
}

class ScopedBatchWriter {
 public:
  // Validates `scope` against the source's `fields` (InvalidArgument naming
  // what is unknown) and sends the delivered schema to `sink`.
  static Result<ScopedBatchWriter> Start(const std::vector<arrow::Field>& fields,
                                         const DatasetScope& scope, BatchSink& sink,
                                         size_t batch_rows = 8192) {
    AIRLOCK_ASSIGN_OR_RETURN(scope::ScopePlan plan, scope::ScopePlan::Make(fields, scope));
    ScopedBatchWriter writer(std::move(plan), sink, batch_rows == 0 ? 1 : batch_rows);
    AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(writer.builder_.MakeSchema()));
    return writer;
  }

  // needed()[c]: source column c is delivered or read by the filter; the
  // others need not be read (their cells are ignored).
  const std::vector<bool>& needed() const { return plan_.needed(); }

  // One source row, a cell per source column. Appended if the row filter
  // matches; a full batch is sent. Cancelled once the host cancelled.
  Status Add(const std::vector<scope::Value>& cells) {
    if (!plan_.filter().Matches(cells)) return Status::Ok();
    for (size_t col = 0; col < plan_.outputs().size(); ++col) {
      const scope::OutputColumn& output = plan_.outputs()[col];
      const scope::Value& cell = cells[output.source];
      if (output.mask && !cell.is_null()) {
        masker_.Mask(*output.mask, cell, &masked_);
        builder_.AppendString(col, masked_);
      } else {
        AppendValue(builder_, col, cell);
      }
    }
    if (builder_.rows() >= batch_rows_) return Flush();
    return Status::Ok();
  }

  // Sends what is left.
  Status Finish() { return Flush(); }

  uint64_t delivered() const { return delivered_; }

 private:
  ScopedBatchWriter(scope::ScopePlan plan, BatchSink& sink, size_t batch_rows)
      : plan_(std::move(plan)),
        sink_(&sink),
        batch_rows_(batch_rows),
        builder_(plan_.output_fields(), batch_rows) {}

  Status Flush() {
    if (sink_->cancelled()) return Status::Cancelled("pull cancelled by the host");
    if (builder_.rows() == 0) return Status::Ok();
    delivered_ += builder_.rows();
    bytes_ += builder_.bytes();
    AIRLOCK_RETURN_IF_ERROR(sink_->SendBatch(builder_.Finish()));
    sink_->Progress(delivered_, bytes_);
    return Status::Ok();
  }

  scope::ScopePlan plan_;
  BatchSink* sink_;
  size_t batch_rows_;
  arrow::RecordBatchBuilder builder_;
  scope::Masker masker_;
  std::string masked_;
  uint64_t delivered_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace airlock::sdk
