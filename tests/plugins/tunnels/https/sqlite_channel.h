// A host-side query channel backed by a real SQLite database in memory: SQL
// is executed by SQLite and the rows are delivered as Arrow batches built
// with the SDK's RecordBatchBuilder, exactly as the enclave runtime would.
//
// Column types come from the declared column type (INTEGER → int64,
// BOOLEAN → bool, REAL/DOUBLE/FLOAT → float64 (text such as 'NaN' via strtod), BLOB → binary, DATE
// → date32 from 'YYYY-MM-DD' text, TIMESTAMPTZ → UTC timestamp and TIMESTAMP → naive timestamp from
// integer microseconds, TIME → time64 from integer microseconds, anything else → utf8), or for
// expressions from the first row's storage class.
//
// Read-only like the real channel: statements that would write are refused
// with PERMISSION_DENIED. One test hook: SQL containing /*wait_for_cancel*/
// blocks, polling the sink's is_cancelled, until it reports true (or 10 s).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "airlock/c/airlock_plugin.h"

namespace airlock::testing {

class SqliteChannel {
 public:
  SqliteChannel();
  ~SqliteChannel();
  SqliteChannel(const SqliteChannel&) = delete;
  SqliteChannel& operator=(const SqliteChannel&) = delete;

  // Runs setup SQL (may write); returns the SQLite error text, empty on success.
  std::string Exec(const std::string& sql);

  const airlock_type_query_channel* channel() const { return &channel_; }

  // Rows per delivered batch.
  void set_batch_rows(size_t rows) { batch_rows_ = rows; }

  // Test hook state.
  bool WaitUntilBlocked(std::chrono::milliseconds timeout);
  bool WaitUntilUnblocked(std::chrono::milliseconds timeout);
  bool saw_cancel() const { return saw_cancel_; }
  int queries_started() const { return queries_started_; }
  int queries_running() const { return queries_running_; }

 private:
  static airlock_type_status Query(void* data, const char* sql, size_t length,
                                   const airlock_type_batch_sink* sink, airlock_type_error* error);
  static airlock_type_status Tables(void* data, airlock_type_buffer* tables,
                                    airlock_type_error* error);
  airlock_type_status RunQuery(const std::string& sql, const airlock_type_batch_sink* sink,
                               airlock_type_error* error);

  sqlite3* db_ = nullptr;
  airlock_type_query_channel channel_{};
  size_t batch_rows_ = 1000;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool blocked_ = false;
  std::atomic<bool> saw_cancel_{false};
  std::atomic<int> queries_started_{0};
  std::atomic<int> queries_running_{0};
};

}  // namespace airlock::testing
