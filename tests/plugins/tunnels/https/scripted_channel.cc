#include "scripted_channel.h"

#include <vector>

#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"

namespace airlock::testing {

ScriptedChannel::ScriptedChannel(Script script) : script_(std::move(script)) {
  channel_.size = sizeof(channel_);
  channel_.host_data = this;
  channel_.query = &Query;
  channel_.tables = &Tables;
}

bool ScriptedChannel::WaitUntilHolding(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return holding_ > 0; });
}

void ScriptedChannel::Release() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
  }
  changed_.notify_all();
}

airlock_type_status ScriptedChannel::Query(void* data, const char*, size_t,
                                           const airlock_type_batch_sink* sink,
                                           airlock_type_error* error) {
  auto* self = static_cast<ScriptedChannel*>(data);
  ++self->queries_running_;
  const airlock_type_status rc = self->Play(sink, error);
  --self->queries_running_;
  return rc;
}

airlock_type_status ScriptedChannel::Play(const airlock_type_batch_sink* sink,
                                          airlock_type_error* error) {
  sdk::BatchSink out(sink);
  const std::vector<arrow::Field> fields = {{"id", arrow::Type::kInt64, {}, true},
                                            {"label", arrow::Type::kUtf8, {}, true}};
  arrow::RecordBatchBuilder builder(fields, static_cast<size_t>(script_.rows_per_batch));
  const auto report = [&](const Status& st) {
    abi::FillError(error, st.message());
    return static_cast<airlock_type_status>(st.code());
  };
  if (auto st = out.SendSchema(builder.MakeSchema()); !st.ok()) return report(st);
  int64_t id = 0;
  for (int b = 0; b < script_.batches; ++b) {
    if (out.cancelled()) {
      saw_cancel_ = true;
      return report(Status::Cancelled("query cancelled"));
    }
    for (int r = 0; r < script_.rows_per_batch; ++r) {
      ++id;
      builder.AppendInt64(0, id);
      builder.AppendString(1, "row " + std::to_string(id));
    }
    if (auto st = out.SendBatch(builder.Finish()); !st.ok()) return report(st);
  }
  if (script_.ending == Ending::kFail) {
    abi::FillError(error, script_.message);
    return script_.error;
  }
  if (script_.ending == Ending::kHold) {
    std::unique_lock<std::mutex> lock(mutex_);
    ++holding_;
    changed_.notify_all();
    // Polls the sink the way the kernel's channel does while an enclave works.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!released_ && std::chrono::steady_clock::now() < give_up) {
      lock.unlock();
      const bool cancelled = out.cancelled();
      lock.lock();
      if (cancelled) {
        saw_cancel_ = true;
        --holding_;
        return report(Status::Cancelled("query cancelled"));
      }
      changed_.wait_for(lock, std::chrono::milliseconds(5));
    }
    --holding_;
    if (!released_) return report(Status::Internal("the test never released the query"));
  }
  return AIRLOCK_OK;
}

airlock_type_status ScriptedChannel::Tables(void*, airlock_type_buffer* tables,
                                            airlock_type_error*) {
  abi::FillBuffer(tables, R"({"tables":[{"name":"scripted","rows":0,"columns":[)"
                          R"({"name":"id","type":"int64"},{"name":"label","type":"utf8"}]}]})");
  return AIRLOCK_OK;
}

}  // namespace airlock::testing
