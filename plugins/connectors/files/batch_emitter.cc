#include "batch_emitter.h"

namespace airlock::connectors::files {

BatchEmitter::BatchEmitter(const scope::ScopePlan& plan, sdk::BatchSink& sink, size_t batch_rows)
    : plan_(plan),
      sink_(sink),
      batch_rows_(batch_rows),
      builder_(plan.output_fields(), batch_rows) {}

Status BatchEmitter::Start() {
  return sink_.SendSchema(builder_.MakeSchema());
}

Status BatchEmitter::CheckCancelled() const {
  if (sink_.cancelled()) return Status::Cancelled("pull cancelled");
  return Status::Ok();
}

Status BatchEmitter::Add(const std::vector<scope::Value>& row) {
  if (++source_rows_ % batch_rows_ == 0) AIRLOCK_RETURN_IF_ERROR(CheckCancelled());
  if (!plan_.filter().empty() && !plan_.filter().Matches(row)) return Status::Ok();

  const auto& outputs = plan_.outputs();
  for (size_t c = 0; c < outputs.size(); ++c) {
    const scope::OutputColumn& out = outputs[c];
    const scope::Value& v = row[out.source];
    if (v.is_null()) {
      builder_.AppendNull(c);
      continue;
    }
    if (out.mask) {
      masker_.Mask(*out.mask, v, &masked_);
      AIRLOCK_RETURN_IF_ERROR(AppendString(c, masked_));
      continue;
    }
    pending_bytes_ += 8;
    switch (out.field.type) {
      case arrow::Type::kBool:
        builder_.AppendBool(c, v.b);
        break;
      case arrow::Type::kInt64:
        builder_.AppendInt64(c, v.i);
        break;
      case arrow::Type::kFloat64:
        builder_.AppendDouble(c, v.d);
        break;
      case arrow::Type::kDate32:
        builder_.AppendDate32(c, static_cast<int32_t>(v.i));
        break;
      case arrow::Type::kTimestampMicros:
        builder_.AppendTimestamp(c, v.i);
        break;
      default:
        AIRLOCK_RETURN_IF_ERROR(AppendString(c, v.s));
        break;
    }
  }
  ++pending_;
  if (pending_ >= batch_rows_ || pending_bytes_ >= kMaxBatchBytes) return Flush();
  return Status::Ok();
}

Status BatchEmitter::AppendString(size_t column, std::string_view value) {
  pending_bytes_ += value.size() + sizeof(int32_t);
  if (!builder_.AppendString(column, value)) {
    // Unreachable while batches are flushed at kMaxBatchBytes; never deliver
    // a silent NULL in place of data.
    return Status::ResourceExhausted("a batch column exceeds the 2 GiB Arrow limit");
  }
  return Status::Ok();
}

Status BatchEmitter::Flush() {
  AIRLOCK_RETURN_IF_ERROR(CheckCancelled());
  const uint64_t bytes = builder_.bytes();
  AIRLOCK_RETURN_IF_ERROR(sink_.SendBatch(builder_.Finish()));
  rows_sent_ += pending_;
  bytes_sent_ += bytes;
  pending_ = 0;
  pending_bytes_ = 0;
  sink_.Progress(rows_sent_, bytes_sent_);
  return Status::Ok();
}

Status BatchEmitter::Finish() {
  if (pending_ > 0) return Flush();
  return CheckCancelled();
}

}  // namespace airlock::connectors::files
