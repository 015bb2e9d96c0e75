// A host-side query channel that plays a script instead of running SQL, to
// test what happens while a result is streaming: it sends the schema
// (id int64, label utf8), then `batches` batches of `rows_per_batch` rows
// (labels "row <id>"), then ends as the script says — success, a channel
// error, or holding (blocking until the sink reports cancelled or Release()
// is called).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "airlock/c/airlock_plugin.h"

namespace airlock::testing {

class ScriptedChannel {
 public:
  enum class Ending { kSucceed, kFail, kHold };
  struct Script {
    int batches = 1;
    int rows_per_batch = 10;
    Ending ending = Ending::kSucceed;
    airlock_type_status error = AIRLOCK_ERR_UNAVAILABLE;  // kFail
    std::string message = "the enclave went away";        // kFail
  };

  explicit ScriptedChannel(Script script);
  ScriptedChannel(const ScriptedChannel&) = delete;
  ScriptedChannel& operator=(const ScriptedChannel&) = delete;

  const airlock_type_query_channel* channel() const { return &channel_; }

  // True once a query is holding (all its batches sent), within `timeout`.
  bool WaitUntilHolding(std::chrono::milliseconds timeout);
  // Lets holding queries (and later ones) finish successfully.
  void Release();

  bool saw_cancel() const { return saw_cancel_; }
  int queries_running() const { return queries_running_; }

 private:
  static airlock_type_status Query(void* data, const char* sql, size_t length,
                                   const airlock_type_batch_sink* sink, airlock_type_error* error);
  static airlock_type_status Tables(void* data, airlock_type_buffer* tables,
                                    airlock_type_error* error);
  airlock_type_status Play(const airlock_type_batch_sink* sink, airlock_type_error* error);

  const Script script_;
  airlock_type_query_channel channel_{};

  std::mutex mutex_;
  std::condition_variable changed_;
  int holding_ = 0;        // guarded by mutex_
  bool released_ = false;  // guarded by mutex_
  std::atomic<bool> saw_cancel_{false};
  std::atomic<int> queries_running_{0};
};

}  // namespace airlock::testing
