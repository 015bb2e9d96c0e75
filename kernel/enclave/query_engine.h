// Read-only query execution on a sealed enclave.
//
// Each worker owns one read-only connection: lane 0's in-memory database as
// "main" with the other lanes attached read-only, then locked down (authorizer
// allowing only SELECT and RECURSIVE, reads of the enclave's own tables, and
// the functions and table-valued functions of sql_surface.h; extension loading
// off, defensive mode, SQL length and value size limits). A query is one statement;
// it runs under a deadline and a cancel flag (both checked by a progress
// handler) and its result streams to the kernel as ResultSchema, ResultBatch
// (about kResultBatchRows rows each) and ResultEnd frames.
//
// Result column types: a declared enclave column type maps back to its Arrow
// type (sqlite_util.h); other columns take their type from the values of the
// first batch (integers -> int64, with reals -> float64, any text -> utf8, any
// blob -> binary, all null -> utf8). A later value that does not fit its
// column (e.g. text in an int64 column) fails the query with
// invalid_argument asking for a CAST, rather than altering data.
//
// Thread-safety: Submit, Cancel and CancelAll may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/enclave/channel.h"
#include "kernel/enclave/enclave_spec.h"

namespace airlock::enclave {

inline constexpr size_t kResultBatchRows = 4096;
// A batch is flushed early once it holds this many bytes (frames stay small).
inline constexpr size_t kResultBatchBytes = 8 * 1024 * 1024;
// Largest string or blob a query may produce (SQLITE_LIMIT_LENGTH).
inline constexpr int kMaxValueBytes = 16 * 1024 * 1024;
// Queries accepted but not yet finished. A tunnel serving many users (pgwire
// runs one call per connection) must be able to queue one query per user.
inline constexpr size_t kMaxQueuedQueries = 4096;

// What one query did: the ResultEnd document's content.
struct QueryOutcome {
  Status status;
  uint64_t rows = 0;
};

class QueryEngine {
 public:
  // Opens `workers` read-only connections over `lane_uris` (lane 0 first).
  // `channel` receives the result frames and must outlive the engine.
  // `data_bytes` is what the sealed databases take: each connection's page
  // caches share half of what the memory bound leaves beside them (see
  // PageCacheBytes).
  static Result<std::unique_ptr<QueryEngine>> Open(const std::vector<std::string>& lane_uris,
                                                   const EnclaveLimits& limits, size_t workers,
                                                   FrameChannel& channel, int64_t data_bytes);

  // The page cache of each database of each connection. The sealed pages
  // live in memory already, but SQLite reads them through its page cache,
  // copying every page it misses: a join that looks rows up all over a
  // table larger than SQLite's default 2 MiB cache spends much of its time
  // copying the same pages again. Half of what the memory bound leaves
  // beside the data, shared by every database of every connection, within
  // 2 MiB (SQLite's default) and 256 MiB each.
  static int64_t PageCacheBytes(const EnclaveLimits& limits, size_t workers, size_t lanes,
                                int64_t data_bytes);
  ~QueryEngine();  // cancels everything and joins the workers
  QueryEngine(const QueryEngine&) = delete;
  QueryEngine& operator=(const QueryEngine&) = delete;

  // Queues a query; its frames (ending with ResultEnd) follow asynchronously.
  // `done` (optional) is called on the worker after ResultEnd was sent. When
  // the query cannot be queued (duplicate id, queue full) a ResultEnd with the
  // error is sent right away and `done` is called before Submit returns.
  // `flow_controlled`: the kernel returns Credit frames for this query's
  // batches (channel.h, FLOW CONTROL); job queries, which the kernel consumes
  // on its reader thread, are not.
  void Submit(std::string id, std::string sql,
              std::function<void(const QueryOutcome&)> done = nullptr, bool flow_controlled = true);

  // The kernel consumed `bytes` of the query's batch payloads (Credit frame).
  void Credit(std::string_view id, uint64_t bytes);

  // Marks a queued or running query cancelled (no-op for unknown ids).
  void Cancel(std::string_view id);
  void CancelAll();

 private:
  struct Worker;
  struct Task;

  QueryEngine(const EnclaveLimits& limits, FrameChannel& channel);
  void WorkerLoop(Worker& worker);
  QueryOutcome Execute(Worker& worker, Task& task);
  // Waits until `bytes` more may be in flight for `task` (see FLOW CONTROL).
  Status AwaitWindow(Task& task, size_t bytes, std::chrono::steady_clock::time_point deadline);
  void SendEnd(const std::string& id, const QueryOutcome& outcome);

  const EnclaveLimits limits_;
  FrameChannel& channel_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;

  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::deque<std::shared_ptr<Task>> queue_;                           // GUARDED_BY(mutex_)
  std::map<std::string, std::shared_ptr<Task>, std::less<>> active_;  // GUARDED_BY(mutex_)
  bool stopping_ = false;                                             // GUARDED_BY(mutex_)
};

}  // namespace airlock::enclave
