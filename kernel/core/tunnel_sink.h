// Adapts a tunnel's ABI result sink (airlock_type_batch_sink) to the kernel's
// BatchConsumer, so that a result from an enclave, or from the replica that
// serves the request, reaches the tunnel the same way.
#pragma once

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock {

// Not thread-safe (one query's reader feeds it). `sink` must outlive it.
class TunnelSinkConsumer final : public sdk::BatchConsumer {
 public:
  explicit TunnelSinkConsumer(const airlock_type_batch_sink* sink) : sink_(sink) {}

  Status OnSchema(arrow::OwnedSchema schema) override {
    ArrowSchema raw;
    schema.MoveTo(&raw);
    const airlock_type_status rc = sink_->on_schema(sink_->host_data, &raw);
    if (raw.release != nullptr) raw.release(&raw);
    if (rc != AIRLOCK_OK) return Status(StatusCodeFromAbi(rc), "tunnel refused the result schema");
    return Status::Ok();
  }

  Status OnBatch(arrow::OwnedArray batch) override {
    ArrowArray raw;
    batch.MoveTo(&raw);
    const airlock_type_status rc = sink_->on_batch(sink_->host_data, &raw);
    if (raw.release != nullptr) raw.release(&raw);
    if (rc != AIRLOCK_OK) return Status(StatusCodeFromAbi(rc), "tunnel stopped reading the result");
    return Status::Ok();
  }

  bool IsCancelled() override {
    return sink_->is_cancelled != nullptr && sink_->is_cancelled(sink_->host_data) != 0;
  }

 private:
  const airlock_type_batch_sink* sink_;
};

}  // namespace airlock
