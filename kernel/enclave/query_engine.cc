#include "kernel/enclave/query_engine.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>

#include "airlock/cpp/arrow.hpp"
#include "kernel/enclave/batch_codec.h"
#include "kernel/enclave/query_authorizer.h"
#include "kernel/enclave/sqlite_util.h"

namespace airlock::enclave {
namespace {

using Clock = std::chrono::steady_clock;

// VM instructions between two deadline/cancel checks.
constexpr int kProgressInterval = 1000;

// A value from either a statement column or the first-batch buffer.
struct SqlValue {
  int type = SQLITE_NULL;
  int64_t i = 0;
  double d = 0;
  std::string_view bytes;  // TEXT / BLOB
};

// A buffered first-batch value (owns its bytes).
struct Cell {
  int type = SQLITE_NULL;
  int64_t i = 0;
  double d = 0;
  std::string bytes;

  SqlValue view() const { return SqlValue{type, i, d, bytes}; }
};

SqlValue ReadColumn(sqlite3_stmt* stmt, int col) {
  SqlValue v;
  v.type = sqlite3_column_type(stmt, col);
  switch (v.type) {
    case SQLITE_INTEGER:
      v.i = sqlite3_column_int64(stmt, col);
      break;
    case SQLITE_FLOAT:
      v.d = sqlite3_column_double(stmt, col);
      break;
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      v.bytes = std::string_view(text != nullptr ? text : "",
                                 static_cast<size_t>(sqlite3_column_bytes(stmt, col)));
      break;
    }
    case SQLITE_BLOB: {
      const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt, col));
      v.bytes = std::string_view(blob != nullptr ? blob : "",
                                 static_cast<size_t>(sqlite3_column_bytes(stmt, col)));
      break;
    }
    default:
      break;
  }
  return v;
}

// True when `v` can be appended to a column of `field`'s type unchanged.
bool Fits(const arrow::Field& field, const SqlValue& v) {
  if (v.type == SQLITE_NULL) return true;
  switch (field.type) {
    case arrow::Type::kNull:
      return false;
    case arrow::Type::kBool:
      return v.type == SQLITE_INTEGER && (v.i == 0 || v.i == 1);
    case arrow::Type::kInt32:
      return v.type == SQLITE_INTEGER && v.i >= INT32_MIN && v.i <= INT32_MAX;
    case arrow::Type::kInt64:
      return v.type == SQLITE_INTEGER;
    case arrow::Type::kFloat64:
      return v.type == SQLITE_INTEGER || v.type == SQLITE_FLOAT;
    case arrow::Type::kUtf8:
      return v.type != SQLITE_BLOB;
    case arrow::Type::kBinary:
      return true;
    case arrow::Type::kDate32:
      return v.type == SQLITE_TEXT && ParseDate32(v.bytes).has_value();
    case arrow::Type::kTimestampMicros:
      return v.type == SQLITE_TEXT && ParseTimestamp(v.bytes, !field.timezone.empty());
    case arrow::Type::kTime64Micros:
      return v.type == SQLITE_TEXT && ParseTime(v.bytes);
  }
  return false;
}

// The text SQLite itself would give a number (CAST(x AS TEXT)).
std::string_view NumberText(const SqlValue& v, char* buf, size_t size) {
  if (v.type == SQLITE_INTEGER) {
    auto [end, ec] = std::to_chars(buf, buf + size, v.i);
    return std::string_view(buf, static_cast<size_t>(end - buf));
  }
  sqlite3_snprintf(static_cast<int>(size), buf, "%!.15g", v.d);
  return std::string_view(buf);
}

const char* StorageName(int type) {
  switch (type) {
    case SQLITE_INTEGER:
      return "an integer";
    case SQLITE_FLOAT:
      return "a real";
    case SQLITE_TEXT:
      return "a text";
    case SQLITE_BLOB:
      return "a blob";
    default:
      return "a null";
  }
}

// Appends `v` (which must Fit) to column `col`.
void Append(arrow::RecordBatchBuilder& builder, size_t col, const arrow::Field& field,
            const SqlValue& v) {
  if (v.type == SQLITE_NULL) {
    builder.AppendNull(col);
    return;
  }
  char buf[64];
  switch (field.type) {
    case arrow::Type::kNull:
      builder.AppendNull(col);
      break;
    case arrow::Type::kBool:
      builder.AppendBool(col, v.i != 0);
      break;
    case arrow::Type::kInt32:
      builder.AppendInt32(col, static_cast<int32_t>(v.i));
      break;
    case arrow::Type::kInt64:
      builder.AppendInt64(col, v.i);
      break;
    case arrow::Type::kFloat64:
      builder.AppendDouble(col, v.type == SQLITE_INTEGER ? static_cast<double>(v.i) : v.d);
      break;
    case arrow::Type::kUtf8:
    case arrow::Type::kBinary:
      if (v.type == SQLITE_TEXT || v.type == SQLITE_BLOB) {
        builder.AppendString(col, v.bytes);
      } else {
        builder.AppendString(col, NumberText(v, buf, sizeof buf));
      }
      break;
    case arrow::Type::kDate32:
      builder.AppendDate32(col, *ParseDate32(v.bytes));
      break;
    case arrow::Type::kTimestampMicros:
      builder.AppendTimestamp(col, *ParseTimestamp(v.bytes, !field.timezone.empty()));
      break;
    case arrow::Type::kTime64Micros:
      builder.AppendTime(col, *ParseTime(v.bytes));
      break;
  }
}

// The column type for a result column, from its declared type and the values
// of the first batch (see the header).
arrow::Field ResolveField(std::string name, const std::optional<arrow::Field>& hint,
                          const std::vector<std::vector<Cell>>& rows, size_t col) {
  bool any = false, has_real = false, has_text = false, has_blob = false;
  bool hint_fits = hint.has_value();
  for (const auto& row : rows) {
    const Cell& cell = row[col];
    if (cell.type == SQLITE_NULL) continue;
    any = true;
    has_real |= cell.type == SQLITE_FLOAT;
    has_text |= cell.type == SQLITE_TEXT;
    has_blob |= cell.type == SQLITE_BLOB;
    if (hint_fits && !Fits(*hint, cell.view())) hint_fits = false;
  }
  if (hint_fits) {
    arrow::Field field = *hint;
    field.name = std::move(name);
    return field;
  }
  arrow::Field field;
  field.name = std::move(name);
  field.nullable = true;
  if (!any) {
    field.type = arrow::Type::kUtf8;
  } else if (has_blob) {
    field.type = arrow::Type::kBinary;
  } else if (has_text) {
    field.type = arrow::Type::kUtf8;
  } else if (has_real) {
    field.type = arrow::Type::kFloat64;
  } else {
    field.type = arrow::Type::kInt64;
  }
  return field;
}

}  // namespace

struct QueryEngine::Task {
  std::string id;
  std::string sql;
  std::function<void(const QueryOutcome&)> done;
  bool flow_controlled = true;
  std::atomic<bool> cancelled{false};

  std::mutex flow_mutex;
  std::condition_variable flow_cv;
  uint64_t in_flight = 0;  // GUARDED_BY(flow_mutex): batch bytes not yet credited

  void MarkCancelled() {
    cancelled.store(true);
    std::lock_guard<std::mutex> lock(flow_mutex);
    flow_cv.notify_all();
  }
};

struct QueryEngine::Worker {
  SqliteDb db;
  QueryAuthorizer auth;  // reset before each prepare
  // Read by the progress handler on the worker's own thread.
  Task* task = nullptr;
  Clock::time_point deadline;

  static int OnProgress(void* data) {
    auto* worker = static_cast<Worker*>(data);
    if (worker->task == nullptr) return 0;
    return worker->task->cancelled.load(std::memory_order_relaxed) ||
                   Clock::now() >= worker->deadline
               ? 1
               : 0;
  }
};

QueryEngine::QueryEngine(const EnclaveLimits& limits, FrameChannel& channel)
    : limits_(limits), channel_(channel) {}

int64_t QueryEngine::PageCacheBytes(const EnclaveLimits& limits, size_t workers, size_t lanes,
                                    int64_t data_bytes) {
  constexpr int64_t kMin = int64_t{2} << 20;
  constexpr int64_t kMax = int64_t{256} << 20;
  const int64_t left = std::max<int64_t>(limits.max_memory_bytes - data_bytes, 0);
  const int64_t shares =
      static_cast<int64_t>(std::max<size_t>(workers, 1) * std::max<size_t>(lanes, 1));
  return std::clamp<int64_t>(left / 2 / shares, kMin, kMax);
}

Result<std::unique_ptr<QueryEngine>> QueryEngine::Open(const std::vector<std::string>& lane_uris,
                                                       const EnclaveLimits& limits, size_t workers,
                                                       FrameChannel& channel, int64_t data_bytes) {
  if (lane_uris.empty()) return Status::Internal("no databases to query");
  // Negative: KiB, the unit PRAGMA cache_size takes for a size in bytes.
  const std::string cache_kib =
      std::to_string(-PageCacheBytes(limits, workers, lane_uris.size(), data_bytes) / 1024);
  std::unique_ptr<QueryEngine> engine(new QueryEngine(limits, channel));
  for (size_t w = 0; w < std::max<size_t>(workers, 1); ++w) {
    auto worker = std::make_unique<Worker>();
    AIRLOCK_ASSIGN_OR_RETURN(worker->db, OpenDatabase("file:" + lane_uris[0] + "?vfs=memdb",
                                                      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                                                      "the sealed database"));
    sqlite3* db = worker->db.get();
    for (size_t i = 1; i < lane_uris.size(); ++i) {
      // The attached databases inherit the connection's read-only flag.
      std::string uri = "file:" + lane_uris[i] + "?vfs=memdb";
      AIRLOCK_RETURN_IF_ERROR(Exec(db, "ATTACH '" + uri + "' AS lane" + std::to_string(i)));
    }
    AIRLOCK_RETURN_IF_ERROR(Exec(db, "PRAGMA temp_store=MEMORY"));
    AIRLOCK_RETURN_IF_ERROR(Exec(db, "PRAGMA main.cache_size=" + cache_kib));
    for (size_t i = 1; i < lane_uris.size(); ++i) {
      AIRLOCK_RETURN_IF_ERROR(
          Exec(db, "PRAGMA lane" + std::to_string(i) + ".cache_size=" + cache_kib));
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
    // "name" is an identifier only: SQLite's fallback that reads an unknown
    // one as a string would turn a misspelt column into a constant.
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, nullptr);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH,
                  static_cast<int>(std::min<int64_t>(limits.max_sql_bytes, 1000000000)));
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, kMaxValueBytes);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, static_cast<int>(lane_uris.size()) - 1);
    AIRLOCK_RETURN_IF_ERROR(worker->auth.Install(db));
    sqlite3_progress_handler(db, kProgressInterval, &Worker::OnProgress, worker.get());
    engine->workers_.push_back(std::move(worker));
  }
  for (auto& worker : engine->workers_) {
    Worker* w = worker.get();
    QueryEngine* self = engine.get();
    engine->threads_.emplace_back([self, w] { self->WorkerLoop(*w); });
  }
  return engine;
}

QueryEngine::~QueryEngine() {
  std::deque<std::shared_ptr<Task>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [id, task] : active_) task->MarkCancelled();
    dropped.swap(queue_);
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
  for (auto& task : dropped) {
    if (task->done) task->done(QueryOutcome{Status::Cancelled("the enclave is shutting down"), 0});
  }
}

void QueryEngine::Submit(std::string id, std::string sql,
                         std::function<void(const QueryOutcome&)> done, bool flow_controlled) {
  auto task = std::make_shared<Task>();
  task->id = std::move(id);
  task->sql = std::move(sql);
  task->done = std::move(done);
  task->flow_controlled = flow_controlled;
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      refused = Status::Cancelled("the enclave is shutting down");
    } else if (active_.count(task->id) != 0) {
      refused = Status::InvalidArgument("a query with this id is already running");
    } else if (active_.size() >= kMaxQueuedQueries) {
      refused = Status::ResourceExhausted("too many queries in flight");
    } else {
      active_.emplace(task->id, task);
      queue_.push_back(task);
    }
  }
  if (!refused.ok()) {
    const QueryOutcome outcome{refused, 0};
    SendEnd(task->id, outcome);
    if (task->done) task->done(outcome);
    return;
  }
  work_cv_.notify_one();
}

void QueryEngine::Cancel(std::string_view id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = active_.find(id); it != active_.end()) it->second->MarkCancelled();
}

void QueryEngine::CancelAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, task] : active_) task->MarkCancelled();
}

void QueryEngine::Credit(std::string_view id, uint64_t bytes) {
  std::shared_ptr<Task> task;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = active_.find(id); it != active_.end()) task = it->second;
  }
  if (task == nullptr) return;
  std::lock_guard<std::mutex> lock(task->flow_mutex);
  task->in_flight -= std::min(bytes, task->in_flight);
  task->flow_cv.notify_all();
}

Status QueryEngine::AwaitWindow(Task& task, size_t bytes, Clock::time_point deadline) {
  if (!task.flow_controlled) return Status::Ok();
  std::unique_lock<std::mutex> lock(task.flow_mutex);
  auto fits = [&] { return task.in_flight == 0 || task.in_flight + bytes <= kResultWindowBytes; };
  task.flow_cv.wait_until(lock, deadline, [&] { return fits() || task.cancelled.load(); });
  if (task.cancelled.load()) return Status::Cancelled("query was cancelled");
  if (!fits()) {
    return Status::DeadlineExceeded("query exceeded its time limit of " +
                                    std::to_string(limits_.query_timeout_ms) +
                                    " ms while its result waited to be read");
  }
  task.in_flight += bytes;
  return Status::Ok();
}

void QueryEngine::WorkerLoop(Worker& worker) {
  for (;;) {
    std::shared_ptr<Task> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = queue_.front();
      queue_.pop_front();
    }
    const QueryOutcome outcome = Execute(worker, *task);
    SendEnd(task->id, outcome);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      active_.erase(task->id);
    }
    if (task->done) task->done(outcome);
  }
}

void QueryEngine::SendEnd(const std::string& id, const QueryOutcome& outcome) {
  nlohmann::json end = {{"id", id}, {"rows", outcome.rows}};
  if (!outcome.status.ok()) {
    end["error"] = outcome.status.message();
    end["code"] = StatusCodeName(outcome.status.code());
  }
  (void)channel_.SendJson(FrameType::kResultEnd, end);  // a dead channel ends everything anyway
}

QueryOutcome QueryEngine::Execute(Worker& worker, Task& task) {
  if (task.cancelled.load()) return {Status::Cancelled("query was cancelled"), 0};
  if (static_cast<int64_t>(task.sql.size()) > limits_.max_sql_bytes) {
    return {Status::InvalidArgument("query text exceeds the limit of " +
                                    std::to_string(limits_.max_sql_bytes) + " bytes"),
            0};
  }
  sqlite3* db = worker.db.get();
  worker.task = &task;
  worker.deadline = Clock::now() + std::chrono::milliseconds(limits_.query_timeout_ms);
  struct ClearTask {
    Worker& w;
    ~ClearTask() { w.task = nullptr; }
  } clear_task{worker};

  auto sqlite_error = [&](int rc) -> Status {
    const int primary = rc & 0xff;
    if (primary == SQLITE_INTERRUPT) {
      if (task.cancelled.load()) return Status::Cancelled("query was cancelled");
      return Status::DeadlineExceeded("query exceeded its time limit of " +
                                      std::to_string(limits_.query_timeout_ms) + " ms");
    }
    if (primary == SQLITE_AUTH || primary == SQLITE_READONLY) {
      return Status::PermissionDenied(std::string("not allowed in a sealed enclave: ") +
                                      sqlite3_errmsg(db) + " (queries are read-only)");
    }
    if (primary == SQLITE_NOMEM || primary == SQLITE_TOOBIG || primary == SQLITE_FULL) {
      return Status::ResourceExhausted(std::string("query exceeded a resource limit: ") +
                                       sqlite3_errmsg(db));
    }
    return Status::InvalidArgument(sqlite3_errmsg(db));
  };

  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  worker.auth.Reset();
  int rc = sqlite3_prepare_v2(db, task.sql.data(), static_cast<int>(task.sql.size()), &raw, &tail);
  SqliteStmt stmt(raw);
  if (rc != SQLITE_OK) {
    // A refused function or pragma table surfaces as a plain SQLITE_ERROR.
    if (worker.auth.denied()) {
      if (!worker.auth.refusal().empty()) {
        return {Status::PermissionDenied(worker.auth.refusal()), 0};
      }
      return {Status::PermissionDenied(std::string("not allowed in a sealed enclave: ") +
                                       sqlite3_errmsg(db) + " (queries are read-only)"),
              0};
    }
    return {sqlite_error(rc), 0};
  }
  if (stmt == nullptr) return {Status::InvalidArgument("the query is empty"), 0};
  // Statements that need no authorisation at all (a bare REINDEX) are not
  // queries either: only SELECTs (WITH, VALUES, EXPLAIN SELECT) run.
  if (!worker.auth.saw_select()) {
    return {Status::PermissionDenied("only SELECT statements are allowed"), 0};
  }
  {
    // Anything but whitespace and comments after the statement is a second one.
    const char* end = task.sql.data() + task.sql.size();
    sqlite3_stmt* next = nullptr;
    rc = sqlite3_prepare_v2(db, tail, static_cast<int>(end - tail), &next, nullptr);
    SqliteStmt second(next);
    if (rc != SQLITE_OK || second != nullptr) {
      return {Status::InvalidArgument("one statement per query"), 0};
    }
  }
  if (!sqlite3_stmt_readonly(stmt.get())) {
    return {Status::PermissionDenied("only read-only statements are allowed"), 0};
  }

  const int columns = sqlite3_column_count(stmt.get());
  const std::string id_header = EncodeIdHeader(task.id);
  uint64_t rows = 0;
  const uint64_t max_rows = static_cast<uint64_t>(limits_.max_result_rows);

  // Phase 1: buffer the first batch to settle the column types.
  std::vector<std::vector<Cell>> first;
  size_t first_bytes = 0;
  bool exhausted = false;
  bool overflow = false;  // more rows than max_result_rows
  const auto too_many_rows = [&] {
    return Status::ResourceExhausted("the result exceeds the limit of " + std::to_string(max_rows) +
                                     " rows");
  };
  while (first.size() < kResultBatchRows && first_bytes < kResultBatchBytes) {
    rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) {
      exhausted = true;
      break;
    }
    if (rc != SQLITE_ROW) return {sqlite_error(rc), 0};
    if (rows == max_rows) {
      overflow = true;
      break;
    }
    std::vector<Cell> row(static_cast<size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      const SqlValue v = ReadColumn(stmt.get(), c);
      row[c].type = v.type;
      row[c].i = v.i;
      row[c].d = v.d;
      row[c].bytes.assign(v.bytes);
      first_bytes += v.bytes.size() + 16;
    }
    first.push_back(std::move(row));
    ++rows;
  }

  std::vector<arrow::Field> fields;
  for (int c = 0; c < columns; ++c) {
    const char* name = sqlite3_column_name(stmt.get(), c);
    std::string column_name = name != nullptr ? name : "column" + std::to_string(c + 1);
    fields.push_back(ResolveField(
        column_name, FieldFromDeclaredType(column_name, sqlite3_column_decltype(stmt.get(), c)),
        first, static_cast<size_t>(c)));
  }
  Status sent = channel_.Send(FrameType::kResultSchema, {id_header, EncodeSchema(fields)});
  if (!sent.ok()) return {sent, rows};

  arrow::RecordBatchBuilder builder(fields, kResultBatchRows);
  auto flush = [&]() -> Status {
    if (builder.rows() == 0) return Status::Ok();
    arrow::OwnedArray array = builder.Finish();
    auto view = arrow::BatchView::Make(fields, *array.get());
    if (!view.ok()) return Status::Internal("result batch: " + view.status().message());
    std::string encoded;
    EncodeBatch(*view, &encoded);
    if (encoded.size() + id_header.size() + 1 > kMaxFrameBytes) {
      return Status::ResourceExhausted("a result batch is too large for the channel");
    }
    if (task.cancelled.load()) return Status::Cancelled("query was cancelled");
    if (Clock::now() >= worker.deadline) {
      return Status::DeadlineExceeded("query exceeded its time limit of " +
                                      std::to_string(limits_.query_timeout_ms) + " ms");
    }
    AIRLOCK_RETURN_IF_ERROR(AwaitWindow(task, id_header.size() + encoded.size(), worker.deadline));
    return channel_.Send(FrameType::kResultBatch, {id_header, encoded});
  };
  auto mismatch = [&](size_t col, const SqlValue& v, uint64_t row) {
    return Status::InvalidArgument("result column '" + fields[col].name + "' is " +
                                   arrow::TypeName(fields[col].type) + " but row " +
                                   std::to_string(row + 1) + " holds " + StorageName(v.type) +
                                   " value; CAST the column to one type");
  };

  for (size_t r = 0; r < first.size(); ++r) {
    for (size_t c = 0; c < fields.size(); ++c) {
      const SqlValue v = first[r][c].view();
      if (!Fits(fields[c], v)) return {mismatch(c, v, r), rows};
      Append(builder, c, fields[c], v);
    }
  }
  first.clear();
  if (Status flushed = flush(); !flushed.ok()) return {flushed, rows};
  if (overflow) return {too_many_rows(), rows};

  // Phase 2: stream the rest straight from the statement.
  while (!exhausted) {
    rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return {sqlite_error(rc), rows};
    if (rows == max_rows) {
      if (Status flushed = flush(); !flushed.ok()) return {flushed, rows};
      return {too_many_rows(), rows};
    }
    for (size_t c = 0; c < fields.size(); ++c) {
      const SqlValue v = ReadColumn(stmt.get(), static_cast<int>(c));
      if (!Fits(fields[c], v)) return {mismatch(c, v, rows), rows};
      Append(builder, c, fields[c], v);
    }
    ++rows;
    if (builder.rows() >= kResultBatchRows || builder.bytes() >= kResultBatchBytes) {
      if (Status flushed = flush(); !flushed.ok()) return {flushed, rows};
    }
  }
  if (Status flushed = flush(); !flushed.ok()) return {flushed, rows};
  return {Status::Ok(), rows};
}

}  // namespace airlock::enclave
