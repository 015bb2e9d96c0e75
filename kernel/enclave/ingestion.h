// Atomic, parallel materialisation of datasets into in-memory SQLite.
//
// Every dataset is pulled by its own thread; the batches it receives go
// through a bounded queue to a writer "lane". A lane is one in-memory database
// (memdb VFS, shared by name within the process) with one writer thread, so
// lanes insert in parallel without contending for a database lock; datasets
// are spread over lanes round-robin. Each dataset lands in a staging table,
// renamed to the dataset's name only once every pull has succeeded. The first
// failure (a connector error, a malformed batch, the memory bound, an abort)
// cancels every other pull; nothing is kept. A table whose connector reported
// key columns is stored in the key's order (see ReportKeys).
//
// Once sealed, query connections open lane 0 as "main" and attach the other
// lanes read-only (see query_engine.h), so every table is reachable by name.
//
// Thread-safety: Run is called once, from one thread; Abort from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "kernel/enclave/enclave_spec.h"

namespace airlock::enclave {

class IngestLane;
struct DatasetIngest;

// Performs dataset `index`'s pull into `consumer` (schema, then batches).
using PullFunction = std::function<Status(size_t index, sdk::BatchConsumer& consumer)>;

// Receives one progress document: {"dataset","rows","bytes","elapsed_ms",
// "state":"pulling|done|failed|cancelled","error"?}. Called from a reporter
// thread, at most every `progress_interval` per dataset plus once at its end.
using ProgressFunction = std::function<void(const nlohmann::json& progress)>;

struct IngestOptions {
  int64_t max_memory_bytes = int64_t{1} << 30;
  // Upper bound on lanes (also bounded by the dataset count and by SQLite's
  // attached-database limit).
  size_t max_lanes = 4;
  std::chrono::milliseconds progress_interval{100};
  // Key columns the operator declared for dataset i (empty: none). A declared
  // key is used in place of whatever the connector reports, so a source that
  // reports none (a file, a collection) can be stored in key order too.
  std::vector<std::vector<std::string>> declared_keys;
};

// The name and shape of a materialised table.
struct TableInfo {
  std::string name;
  uint64_t rows = 0;
  std::vector<arrow::Field> fields;
};

class Ingestion {
 public:
  // `db_prefix` names the in-memory databases ("/<prefix>-<lane>"); it must be
  // unique within the process.
  Ingestion(std::vector<std::string> dataset_names, std::string db_prefix, IngestOptions options);
  ~Ingestion();
  Ingestion(const Ingestion&) = delete;
  Ingestion& operator=(const Ingestion&) = delete;

  // Pulls every dataset concurrently and waits for all. On success the data is
  // in staging tables. On failure returns the first failure with the dataset
  // named ("dataset X: ..."); the databases are closed and freed.
  Status Run(const PullFunction& pull, const ProgressFunction& progress);

  // Stops a running ingestion: pulls see cancellation; Run returns `why`
  // unless something failed first.
  void Abort(Status why);

  // After a successful Run: renames staging tables to the dataset names.
  Status PublishTables();

  // A table whose connector reported key columns (schema metadata
  // "airlock.key", see batch.hpp), or whose key the operator declared
  // (IngestOptions::declared_keys), is stored in the key's order as it is
  // written: a WITHOUT ROWID table whose primary key is the key, so lookups
  // and joins on it are one b-tree search with no index beside the rows. A
  // key that is malformed or names a column the table lacks is not used; one
  // whose values repeat or are missing moves the rows written so far to an
  // ordinary table and the pull goes on. Neither ever costs a row. After a
  // successful Run, ReportKeys tells `warn` (on the calling thread) of each
  // reported key not used and why.
  void ReportKeys(const std::function<void(const std::string&)>& warn) const;

  // URIs of the lane databases; lane 0 first. Valid after a successful Run.
  std::vector<std::string> LaneUris() const;
  // Lane of each table is given by TableLane(i); tables in dataset order.
  const std::vector<TableInfo>& tables() const { return tables_; }

  // Bytes the in-memory databases take, as of the last batch written (what
  // limits.max_memory_bytes bounds); it stays readable after CloseWriters.
  int64_t data_bytes() const { return total_bytes_.load(std::memory_order_relaxed); }

  // Closes the writer connections. The in-memory databases live on only while
  // another connection (a sealed query connection) holds them.
  void CloseWriters();

 private:
  // Records the first failure (`dataset` is its index, or -1) and stops everything.
  void Fail(Status status, int64_t dataset);
  // Stops the writers, finalises statements and closes the databases.
  void DropLanes();
  bool aborted() const { return aborted_.load(std::memory_order_acquire); }

  std::vector<std::string> names_;
  std::string db_prefix_;
  IngestOptions options_;
  // lanes_ changes only under lanes_mutex_ (Fail iterates it from any
  // thread); lanes are destroyed outside the lock (their writers may Fail).
  std::mutex lanes_mutex_;
  std::vector<std::unique_ptr<IngestLane>> lanes_;  // GUARDED_BY(lanes_mutex_) for changes
  std::vector<std::unique_ptr<DatasetIngest>> datasets_;
  std::vector<TableInfo> tables_;

  std::atomic<bool> aborted_{false};
  mutable std::mutex failure_mutex_;
  Status failure_;               // GUARDED_BY(failure_mutex_): the first failure
  int64_t failed_dataset_ = -1;  // GUARDED_BY(failure_mutex_): whose it was
  std::atomic<int64_t> total_bytes_{0};

  friend class IngestLane;
  friend class IngestConsumer;
};

}  // namespace airlock::enclave
