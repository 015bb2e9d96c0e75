#include "kernel/enclave/ingestion.h"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <thread>

#include "kernel/enclave/batch_feed.h"
#include "kernel/enclave/sqlite_util.h"

namespace airlock::enclave {
namespace {

using Clock = std::chrono::steady_clock;

// Batches waiting for a lane's writer, across the datasets it serves. Bounds
// the Arrow memory held outside SQLite.
constexpr size_t kLaneQueueDepth = 8;
// SQLite's default SQLITE_MAX_COLUMN.
constexpr int64_t kMaxColumns = 2000;
enum class DatasetState { kPulling, kDone, kFailed, kCancelled };

const char* DatasetStateName(DatasetState state) {
  switch (state) {
    case DatasetState::kPulling:
      return "pulling";
    case DatasetState::kDone:
      return "done";
    case DatasetState::kFailed:
      return "failed";
    case DatasetState::kCancelled:
      return "cancelled";
  }
  return "failed";
}

// Payload bytes a batch carries (values, offsets, string data, bitmaps).
uint64_t EstimateBytes(const arrow::BatchView& view) {
  const uint64_t rows = view.num_rows();
  uint64_t total = 0;
  for (size_t c = 0; c < view.num_columns(); ++c) {
    const arrow::BatchView::Column& col = view.column(c);
    if (col.validity != nullptr) total += (rows + 7) / 8;
    if (col.type == arrow::Type::kBool) {
      total += (rows + 7) / 8;
    } else if (arrow::IsVarSize(col.type)) {
      total += (rows + 1) * sizeof(int32_t);
      if (rows > 0) {
        int32_t begin = 0, end = 0;
        std::memcpy(&begin, col.offsets + col.offset, sizeof begin);
        std::memcpy(&end, col.offsets + col.offset + static_cast<int64_t>(rows), sizeof end);
        if (end > begin) total += static_cast<uint64_t>(end - begin);
      }
    } else {
      total += rows * arrow::FixedWidth(col.type);
    }
  }
  return total;
}

Status StepError(sqlite3* db, int rc, std::string_view doing) {
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL || primary == SQLITE_NOMEM || primary == SQLITE_TOOBIG) {
    return Status::ResourceExhausted("the enclave memory limit was reached while " +
                                     std::string(doing));
  }
  return Status::Internal(std::string(doing) + " failed: " + sqlite3_errmsg(db));
}

}  // namespace

// Per-dataset state. `rows`, `bytes` and `state` are read by the reporter.
struct DatasetIngest {
  size_t index = 0;
  std::string name;
  std::string staging;
  IngestLane* lane = nullptr;
  Clock::time_point started;
  std::atomic<uint64_t> rows{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<DatasetState> state{DatasetState::kPulling};
  std::string error;  // written before `state` becomes kFailed/kCancelled

  // Written by the lane's writer thread when it handles the schema; read by
  // others only after the dataset finished.
  std::vector<arrow::Field> fields;
  // Written by the puller when the schema arrives, before the writer sees
  // the schema; read once the pulls ended. The key columns declared for it,
  // else those its connector reported ("airlock.key"), or why the report was
  // ignored.
  std::vector<std::string> declared_key;  // set before the pulls start
  std::vector<std::string> key;
  std::string key_error;
  // Writer thread only: whether the table is clustered on that key, and why
  // not when the key was reported but could not serve (read once the pulls
  // ended).
  bool clustered = false;
  std::string key_note;
  // Writer thread only: the dataset's feed table (temp schema of the lane's
  // writer connection) and `INSERT INTO <staging> SELECT * FROM <feed>`,
  // which inserts the lane's current batch in one step.
  std::string feed_table;
  SqliteStmt insert;
  // The column definitions of the staging table and of the final one, which
  // has the declared types users see; the staging table declares temporal
  // columns TEXT instead (see CreateTable). `final_ddl` is the final table.
  std::string staging_columns;
  std::string final_columns;
  std::string final_ddl;
  bool declared_types_differ = false;

  // Completion handshake between the writer (kEnd) and the puller.
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool finished = false;  // GUARDED_BY(done_mutex)
  Status writer_status;   // GUARDED_BY(done_mutex) once finished
};

class IngestLane {
 public:
  IngestLane(std::string uri, Ingestion& owner) : uri_(std::move(uri)), owner_(owner) {}
  ~IngestLane() {
    StopWriter();
    CloseDatabase();
  }

  const std::string& uri() const { return uri_; }

  sqlite3* db() const { return db_.get(); }

  Status Open(int64_t size_limit) {
    AIRLOCK_ASSIGN_OR_RETURN(
        db_, OpenDatabase("file:" + uri_ + "?vfs=memdb",
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                          "the enclave's in-memory database"));
    sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
    sqlite3_int64 limit = size_limit;
    sqlite3_file_control(db_.get(), "main", SQLITE_FCNTL_SIZE_LIMIT, &limit);
    // The journal only serves ROLLBACK after a failed batch (the whole
    // ingestion fails then); keep it in memory.
    // The feed tables live in the temp schema, which must not touch a disk.
    AIRLOCK_RETURN_IF_ERROR(Exec(
        db_.get(), "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY"));
    AIRLOCK_RETURN_IF_ERROR(RegisterBatchFeed(db_.get(), &feed_));
    AIRLOCK_ASSIGN_OR_RETURN(begin_, Prepare(db_.get(), "BEGIN"));
    AIRLOCK_ASSIGN_OR_RETURN(commit_, Prepare(db_.get(), "COMMIT"));
    AIRLOCK_ASSIGN_OR_RETURN(page_count_, Prepare(db_.get(), "PRAGMA page_count"));
    AIRLOCK_ASSIGN_OR_RETURN(SqliteStmt page_size, Prepare(db_.get(), "PRAGMA page_size"));
    if (sqlite3_step(page_size.get()) == SQLITE_ROW) {
      page_size_ = sqlite3_column_int64(page_size.get(), 0);
    }
    writer_ = std::thread([this] { Loop(); });
    return Status::Ok();
  }

  // Puller side. Blocks while the queue is full; Cancelled once aborted.
  Status PushSchema(DatasetIngest& ds, std::vector<arrow::Field> fields) {
    Item item;
    item.kind = Item::kSchema;
    item.ds = &ds;
    item.fields = std::move(fields);
    return Push(std::move(item));
  }
  Status PushBatch(DatasetIngest& ds, arrow::OwnedArray batch) {
    Item item;
    item.kind = Item::kBatch;
    item.ds = &ds;
    item.batch = std::move(batch);
    return Push(std::move(item));
  }
  // Waits until every batch of `ds` is committed; returns the writer's verdict.
  Status Finish(DatasetIngest& ds) {
    Item item;
    item.kind = Item::kEnd;
    item.ds = &ds;
    AIRLOCK_RETURN_IF_ERROR(Push(std::move(item)));
    std::unique_lock<std::mutex> lock(ds.done_mutex);
    ds.done_cv.wait(lock, [&] { return ds.finished; });
    return ds.writer_status;
  }

  // Wakes pushers blocked on a full queue (after an abort).
  void Wake() {
    std::lock_guard<std::mutex> lock(mutex_);
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  void StopWriter() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  void CloseDatabase() {
    begin_.reset();
    commit_.reset();
    page_count_.reset();
    db_.reset();
  }

 private:
  struct Item {
    enum Kind { kSchema, kBatch, kEnd } kind = kBatch;
    DatasetIngest* ds = nullptr;
    std::vector<arrow::Field> fields;
    arrow::OwnedArray batch;
  };

  Status Push(Item item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(
        lock, [&] { return queue_.size() < kLaneQueueDepth || owner_.aborted() || stopping_; });
    if (owner_.aborted() || stopping_) return Status::Cancelled("ingestion was stopped");
    queue_.push_back(std::move(item));
    not_empty_.notify_one();
    return Status::Ok();
  }

  void Loop() {
    for (;;) {
      Item item;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        not_empty_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
        not_full_.notify_one();
      }
      Handle(item);
    }
  }

  void Handle(Item& item) {
    DatasetIngest& ds = *item.ds;
    if (item.kind == Item::kEnd) {
      ds.insert.reset();
      if (!ds.feed_table.empty()) {
        // Best effort: the connection drops it when it closes anyway.
        sqlite3_exec(db_.get(), ("DROP TABLE temp." + QuoteIdentifier(ds.feed_table)).c_str(),
                     nullptr, nullptr, nullptr);
        ds.feed_table.clear();
      }
      std::lock_guard<std::mutex> lock(ds.done_mutex);
      ds.finished = true;
      ds.done_cv.notify_all();
      return;
    }
    if (!ds.writer_status.ok() || owner_.aborted()) return;  // drop: nothing will be kept
    Status status = item.kind == Item::kSchema ? CreateTable(ds, std::move(item.fields))
                                               : InsertBatch(ds, item.batch);
    item.batch.reset();
    if (!status.ok()) {
      {
        std::lock_guard<std::mutex> lock(ds.done_mutex);
        ds.writer_status = status;
      }
      owner_.Fail(status, ds.index);  // stops every pull at once
    }
  }

  Status CreateTable(DatasetIngest& ds, std::vector<arrow::Field> fields) {
    std::string columns;
    std::string final_columns;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) {
        columns += ", ";
        final_columns += ", ";
      }
      const std::string name = QuoteIdentifier(fields[i].name);
      columns += name + " " + StagingDeclaredType(fields[i]);
      final_columns += name + " " + DeclaredType(fields[i]);
      if (std::string_view(StagingDeclaredType(fields[i])) != DeclaredType(fields[i])) {
        ds.declared_types_differ = true;
      }
    }
    ds.staging_columns = std::move(columns);
    ds.final_columns = std::move(final_columns);
    const std::string key = ClusteringKey(ds, fields);
    ds.clustered = !key.empty();
    Status created = Exec(db_.get(), TableDdl(ds.staging, ds.staging_columns, key));
    if (!created.ok()) {
      return Status::InvalidArgument("cannot create its table: " + created.message());
    }
    ds.final_ddl = TableDdl(ds.name, ds.final_columns, key);
    ds.feed_table = "_airlock_feed_" + std::to_string(ds.index);
    AIRLOCK_RETURN_IF_ERROR(
        Exec(db_.get(), "CREATE VIRTUAL TABLE temp." + QuoteIdentifier(ds.feed_table) + " USING " +
                            kBatchFeedModule + "(" + std::to_string(fields.size()) + ")"));
    AIRLOCK_RETURN_IF_ERROR(PrepareInsert(ds));
    ds.fields = std::move(fields);
    return Status::Ok();
  }

  // The table is stored in the order of the key its connector reported
  // (a WITHOUT ROWID table whose primary key is that key), so a lookup or a
  // join on the key is one b-tree search, with no index to build or keep
  // beside the rows. "" (an ordinary table) when there is no key, when it
  // names a column the table lacks (noted), or when a key column is staged
  // under another type than its final one (temporal columns): restoring the
  // type must not change how the stored order compares.
  static std::string ClusteringKey(DatasetIngest& ds, const std::vector<arrow::Field>& fields) {
    if (ds.key.empty() || !ds.key_error.empty()) return "";
    std::string columns;
    for (const std::string& name : ds.key) {
      auto field = std::find_if(fields.begin(), fields.end(),
                                [&](const arrow::Field& f) { return f.name == name; });
      if (field == fields.end()) {
        ds.key_note = "'" + name + "' is not one of its columns";
        return "";
      }
      if (std::string_view(StagingDeclaredType(*field)) != DeclaredType(*field)) return "";
      columns += (columns.empty() ? "" : ", ") + QuoteIdentifier(name);
    }
    return "PRIMARY KEY (" + columns + ")";
  }

  static std::string TableDdl(const std::string& name, const std::string& columns,
                              const std::string& key) {
    if (key.empty()) return "CREATE TABLE " + QuoteIdentifier(name) + " (" + columns + ")";
    return "CREATE TABLE " + QuoteIdentifier(name) + " (" + columns + ", " + key +
           ") WITHOUT ROWID";
  }

  Status PrepareInsert(DatasetIngest& ds) {
    AIRLOCK_ASSIGN_OR_RETURN(
        ds.insert, Prepare(db_.get(), "INSERT INTO " + QuoteIdentifier(ds.staging) +
                                          " SELECT * FROM temp." + QuoteIdentifier(ds.feed_table)));
    return Status::Ok();
  }

  // The connector's key turned out not to be one: a value repeated, or
  // missing. The rows so far move to an ordinary table and the dataset goes
  // on without the order; its rows are never refused for the key's sake.
  Status Unclustered(DatasetIngest& ds) {
    ds.insert.reset();
    const std::string moved = ds.staging + "_unclustered";
    Status status =
        Exec(db_.get(),
             "BEGIN; " + TableDdl(moved, ds.staging_columns, "") + "; INSERT INTO " +
                 QuoteIdentifier(moved) + " SELECT * FROM " + QuoteIdentifier(ds.staging) +
                 "; DROP TABLE " + QuoteIdentifier(ds.staging) + "; ALTER TABLE " +
                 QuoteIdentifier(moved) + " RENAME TO " + QuoteIdentifier(ds.staging) + "; COMMIT");
    if (!status.ok()) {
      if (!sqlite3_get_autocommit(db_.get())) {
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      }
      return status.WithContext("moving its rows out of the key's order");
    }
    ds.clustered = false;
    ds.final_ddl = TableDdl(ds.name, ds.final_columns, "");
    ds.key_note = "a key value repeats or is missing, so its rows are not stored in key order";
    return PrepareInsert(ds);
  }

  Status InsertBatch(DatasetIngest& ds, const arrow::OwnedArray& batch) {
    auto view = arrow::BatchView::Make(ds.fields, *batch.get());
    if (!view.ok()) return view.status().WithContext("malformed batch");
    if (view->num_rows() == 0) return Status::Ok();
    bool key_refused = false;
    Status status = InsertInTransaction(ds, *view, &key_refused);
    if (key_refused) {
      status = Unclustered(ds);
      if (status.ok()) status = InsertInTransaction(ds, *view, nullptr);
    }
    if (!status.ok()) return status;
    ds.rows.fetch_add(view->num_rows(), std::memory_order_relaxed);
    ds.bytes.fetch_add(EstimateBytes(*view), std::memory_order_relaxed);
    return AccountMemory();
  }

  // The whole batch or nothing. `*key_refused` is set when a clustered
  // table refused it for its key (and only then, when asked).
  Status InsertInTransaction(DatasetIngest& ds, const arrow::BatchView& view, bool* key_refused) {
    sqlite3* db = db_.get();
    int rc = sqlite3_step(begin_.get());
    sqlite3_reset(begin_.get());
    if (rc != SQLITE_DONE) return StepError(db, rc, "starting a transaction");
    Status status = InsertRows(ds, view, key_refused);
    if (status.ok()) {
      rc = sqlite3_step(commit_.get());
      sqlite3_reset(commit_.get());
      if (rc != SQLITE_DONE) status = StepError(db, rc, "committing");
    }
    if (!status.ok() && !sqlite3_get_autocommit(db)) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return status;
  }

  // The hot path: one step inserts the whole batch, SQLite reading each cell
  // straight from the Arrow buffers through the feed (batch_feed.h).
  Status InsertRows(DatasetIngest& ds, const arrow::BatchView& view, bool* key_refused) {
    feed_.view = &view;
    const int rc = sqlite3_step(ds.insert.get());
    sqlite3_reset(ds.insert.get());
    feed_.view = nullptr;
    if (rc == SQLITE_DONE) return Status::Ok();
    if (key_refused != nullptr && ds.clustered && (rc & 0xff) == SQLITE_CONSTRAINT) {
      *key_refused = true;
    }
    return StepError(db_.get(), rc, "inserting rows");
  }

  // The bytes the database takes now.
  int64_t CurrentBytes() {
    int64_t pages = 0;
    if (sqlite3_step(page_count_.get()) == SQLITE_ROW) {
      pages = sqlite3_column_int64(page_count_.get(), 0);
    }
    sqlite3_reset(page_count_.get());
    return pages * page_size_;
  }

  // Adds this lane's growth to the enclave-wide total and enforces the bound.
  Status AccountMemory() {
    const int64_t size = CurrentBytes();
    const int64_t total = owner_.total_bytes_.fetch_add(size - lane_bytes_) + (size - lane_bytes_);
    lane_bytes_ = size;
    if (total > owner_.options_.max_memory_bytes) {
      return Status::ResourceExhausted("the enclave memory limit of " +
                                       std::to_string(owner_.options_.max_memory_bytes) +
                                       " bytes was exceeded");
    }
    return Status::Ok();
  }

  const std::string uri_;
  Ingestion& owner_;
  SqliteDb db_;
  SqliteStmt begin_, commit_, page_count_;
  BatchFeed feed_;  // writer thread only: the batch being inserted
  int64_t page_size_ = 4096;
  int64_t lane_bytes_ = 0;  // writer thread only

  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<Item> queue_;  // GUARDED_BY(mutex_)
  bool stopping_ = false;   // GUARDED_BY(mutex_)
  std::thread writer_;
};

// The sink a connector pulls into: validates the schema and forwards batches
// to the dataset's lane.
class IngestConsumer final : public sdk::BatchConsumer {
 public:
  IngestConsumer(Ingestion& owner, DatasetIngest& ds) : owner_(owner), ds_(ds) {}

  bool saw_schema() const { return saw_schema_; }

  Status OnSchema(arrow::OwnedSchema schema) override {
    if (saw_schema_) return Status::InvalidArgument("connector sent the schema twice");
    const ArrowSchema& raw = *schema.get();
    if (raw.format == nullptr || std::string_view(raw.format) != "+s") {
      return Status::InvalidArgument("connector schema is not a struct ('+s')");
    }
    if (raw.n_children <= 0 || raw.n_children > kMaxColumns || raw.children == nullptr) {
      return Status::InvalidArgument("connector schema must have 1 to " +
                                     std::to_string(kMaxColumns) + " columns");
    }
    std::vector<arrow::Field> fields;
    for (int64_t i = 0; i < raw.n_children; ++i) {
      if (raw.children[i] == nullptr) return Status::InvalidArgument("schema has a NULL column");
      AIRLOCK_ASSIGN_OR_RETURN(arrow::Field field, arrow::ParseField(*raw.children[i]));
      fields.push_back(std::move(field));
    }
    // A malformed key only costs the order; the data is still good.
    auto key = sdk::KeyColumnsOf(raw);
    if (!ds_.declared_key.empty()) {
      ds_.key = ds_.declared_key;
    } else if (key.ok()) {
      ds_.key = std::move(key).value();
    } else {
      ds_.key_error = key.status().message();
    }
    saw_schema_ = true;
    return ds_.lane->PushSchema(ds_, std::move(fields));
  }

  Status OnBatch(arrow::OwnedArray batch) override {
    if (!saw_schema_) return Status::FailedPrecondition("connector sent a batch before its schema");
    return ds_.lane->PushBatch(ds_, std::move(batch));
  }

  bool IsCancelled() override { return owner_.aborted(); }

 private:
  Ingestion& owner_;
  DatasetIngest& ds_;
  bool saw_schema_ = false;
};

Ingestion::Ingestion(std::vector<std::string> dataset_names, std::string db_prefix,
                     IngestOptions options)
    : names_(std::move(dataset_names)), db_prefix_(std::move(db_prefix)), options_(options) {}

Ingestion::~Ingestion() {
  DropLanes();
}

void Ingestion::DropLanes() {
  std::vector<std::unique_ptr<IngestLane>> lanes;
  {
    std::lock_guard<std::mutex> lock(lanes_mutex_);
    lanes.swap(lanes_);
  }
  for (auto& lane : lanes) lane->StopWriter();
  datasets_.clear();  // finalises insert statements before the databases close
  lanes.clear();
}

void Ingestion::Fail(Status status, int64_t dataset) {
  {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    if (failure_.ok()) {
      failure_ = std::move(status);
      failed_dataset_ = dataset;
    }
  }
  aborted_.store(true, std::memory_order_release);
  std::lock_guard<std::mutex> lock(lanes_mutex_);
  for (auto& lane : lanes_) lane->Wake();
}

void Ingestion::Abort(Status why) {
  Fail(std::move(why), -1);
}

Status Ingestion::Run(const PullFunction& pull, const ProgressFunction& progress) {
  const size_t n = names_.size();
  if (n == 0) return Status::InvalidArgument("no datasets to ingest");

  // Lanes: as many as useful, within SQLite's attached-database limit.
  size_t lane_count = std::max<size_t>(1, std::min(n, options_.max_lanes));
  for (size_t i = 0; i < lane_count; ++i) {
    auto lane = std::make_unique<IngestLane>("/" + db_prefix_ + "-" + std::to_string(i), *this);
    Status opened = lane->Open(options_.max_memory_bytes);
    if (i == 0 && opened.ok()) {
      const int attachable = sqlite3_limit(lane->db(), SQLITE_LIMIT_ATTACHED, -1);
      lane_count = std::min(lane_count, static_cast<size_t>(std::max(attachable, 0)) + 1);
    }
    {
      std::lock_guard<std::mutex> lock(lanes_mutex_);
      lanes_.push_back(std::move(lane));
    }
    if (!opened.ok()) {
      DropLanes();
      return opened;
    }
  }

  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    auto ds = std::make_unique<DatasetIngest>();
    ds->index = i;
    ds->name = names_[i];
    ds->staging = "_airlock_staging_" + std::to_string(i);
    ds->lane = lanes_[i % lanes_.size()].get();
    ds->started = start;
    if (i < options_.declared_keys.size()) ds->declared_key = options_.declared_keys[i];
    datasets_.push_back(std::move(ds));
  }

  std::mutex done_mutex;
  std::condition_variable done_cv;
  size_t running = n;  // GUARDED_BY(done_mutex)

  std::vector<std::thread> pullers;
  pullers.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    pullers.emplace_back([&, i] {
      DatasetIngest& ds = *datasets_[i];
      IngestConsumer consumer(*this, ds);
      Status status = aborted() ? Status::Cancelled("ingestion was stopped") : pull(i, consumer);
      if (status.ok() && !consumer.saw_schema()) {
        status = Status::FailedPrecondition("connector delivered no schema");
      }
      if (status.ok()) status = ds.lane->Finish(ds);
      if (status.ok()) {
        ds.state.store(DatasetState::kDone);
      } else {
        Fail(status, i);  // kept only if nothing failed before
        std::lock_guard<std::mutex> lock(failure_mutex_);
        const bool culprit = failed_dataset_ == static_cast<int64_t>(i);
        ds.error = (culprit ? failure_ : status).ToString();
        ds.state.store(culprit ? DatasetState::kFailed : DatasetState::kCancelled);
      }
      std::lock_guard<std::mutex> lock(done_mutex);
      --running;
      done_cv.notify_all();
    });
  }

  // Report progress from this thread until every pull has ended.
  std::vector<uint64_t> reported_rows(n, UINT64_MAX);
  std::vector<bool> reported_final(n, false);
  auto report = [&](bool only_finished) {
    for (size_t i = 0; i < n; ++i) {
      DatasetIngest& ds = *datasets_[i];
      if (reported_final[i]) continue;
      const DatasetState state = ds.state.load();
      const uint64_t rows = ds.rows.load();
      const bool final = state != DatasetState::kPulling;
      if (!final && (only_finished || rows == reported_rows[i])) continue;
      nlohmann::json doc = {{"dataset", ds.name},
                            {"rows", rows},
                            {"bytes", ds.bytes.load()},
                            {"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                               Clock::now() - ds.started)
                                               .count()},
                            {"state", DatasetStateName(state)}};
      if (state == DatasetState::kFailed || state == DatasetState::kCancelled) {
        doc["error"] = ds.error;
      }
      reported_rows[i] = rows;
      reported_final[i] = final;
      if (progress) progress(doc);
    }
  };
  {
    std::unique_lock<std::mutex> lock(done_mutex);
    Clock::time_point next = Clock::now() + options_.progress_interval;
    size_t last_running = running;
    while (running > 0) {
      done_cv.wait_until(lock, next, [&] { return running != last_running; });
      const bool periodic = Clock::now() >= next;
      last_running = running;
      lock.unlock();
      report(/*only_finished=*/!periodic);
      lock.lock();
      if (periodic) next = Clock::now() + options_.progress_interval;
    }
  }
  for (auto& t : pullers) t.join();
  report(/*only_finished=*/false);

  for (auto& lane : lanes_) lane->StopWriter();  // lanes_ is stable: only Run changes it now
  Status failure;
  {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    failure = failure_;
  }
  // failed_dataset_ is stable now: every thread that could write it has ended.
  if (!failure.ok()) {
    if (failed_dataset_ >= 0) {
      failure = failure.WithContext("dataset " + names_[static_cast<size_t>(failed_dataset_)]);
    }
    DropLanes();  // closes the databases: the memory is freed
    return failure;
  }
  for (auto& ds : datasets_) {
    tables_.push_back(TableInfo{ds->name, ds->rows.load(), ds->fields});
  }
  return Status::Ok();
}

Status Ingestion::PublishTables() {
  for (auto& ds : datasets_) {
    sqlite3* db = ds->lane->db();
    Status renamed = Exec(db, "ALTER TABLE " + QuoteIdentifier(ds->staging) + " RENAME TO " +
                                  QuoteIdentifier(ds->name));
    if (renamed.ok() && ds->declared_types_differ) {
      renamed = RestoreDeclaredTypes(db, ds->name, ds->final_ddl);
    }
    if (!renamed.ok()) return renamed.WithContext("dataset " + ds->name);
  }
  return Status::Ok();
}

void Ingestion::ReportKeys(const std::function<void(const std::string&)>& warn) const {
  if (!warn) return;
  for (const auto& ds : datasets_) {
    const std::string& why = !ds->key_error.empty() ? ds->key_error : ds->key_note;
    if (!why.empty()) warn("dataset " + ds->name + ": key not used: " + why);
  }
}

std::vector<std::string> Ingestion::LaneUris() const {
  std::vector<std::string> uris;
  for (const auto& lane : lanes_) uris.push_back(lane->uri());
  return uris;
}

void Ingestion::CloseWriters() {
  DropLanes();
}

}  // namespace airlock::enclave
