#include "sqlite_channel.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"

namespace airlock::testing {
namespace {

using airlock::arrow::Field;
using airlock::arrow::Type;

std::string Upper(const char* text) {
  std::string out = text != nullptr ? text : "";
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Type TypeFromDecl(const std::string& decl, int storage_class) {
  if (!decl.empty()) {
    if (decl.find("BOOL") != std::string::npos) return Type::kBool;
    if (decl.find("INT") != std::string::npos) return Type::kInt64;
    if (decl.find("REAL") != std::string::npos || decl.find("DOUB") != std::string::npos ||
        decl.find("FLOA") != std::string::npos) {
      return Type::kFloat64;
    }
    if (decl.find("BLOB") != std::string::npos) return Type::kBinary;
    if (decl == "DATE") return Type::kDate32;
    if (decl.starts_with("TIMESTAMP")) return Type::kTimestampMicros;
    if (decl == "TIME") return Type::kTime64Micros;
    return Type::kUtf8;
  }
  switch (storage_class) {
    case SQLITE_INTEGER:
      return Type::kInt64;
    case SQLITE_FLOAT:
      return Type::kFloat64;
    case SQLITE_BLOB:
      return Type::kBinary;
    default:
      return Type::kUtf8;
  }
}

// 'YYYY-MM-DD' → days since the epoch.
bool ParseDate(std::string_view text, int32_t* days) {
  int y = 0;
  unsigned m = 0, d = 0;
  if (std::sscanf(std::string(text).c_str(), "%d-%u-%u", &y, &m, &d) != 3) return false;
  *days = static_cast<int32_t>(arrow::DaysFromCivil(y, m, d));
  return true;
}

void AppendCell(arrow::RecordBatchBuilder& builder, sqlite3_stmt* stmt, int col, Type type) {
  const size_t c = static_cast<size_t>(col);
  if (sqlite3_column_type(stmt, col) == SQLITE_NULL) return builder.AppendNull(c);
  switch (type) {
    case Type::kBool:
      return builder.AppendBool(c, sqlite3_column_int64(stmt, col) != 0);
    case Type::kInt32:
      return builder.AppendInt32(c, static_cast<int32_t>(sqlite3_column_int64(stmt, col)));
    case Type::kInt64:
      return builder.AppendInt64(c, sqlite3_column_int64(stmt, col));
    case Type::kFloat64:
      // Text in a REAL column (SQLite keeps 'NaN' as text) is read with strtod.
      if (sqlite3_column_type(stmt, col) == SQLITE_TEXT) {
        return builder.AppendDouble(
            c, std::strtod(reinterpret_cast<const char*>(sqlite3_column_text(stmt, col)), nullptr));
      }
      return builder.AppendDouble(c, sqlite3_column_double(stmt, col));
    case Type::kTimestampMicros:
      return builder.AppendTimestamp(c, sqlite3_column_int64(stmt, col));
    case Type::kTime64Micros:
      return builder.AppendTime(c, sqlite3_column_int64(stmt, col));
    case Type::kDate32: {
      const char* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      int32_t days = 0;
      if (text != nullptr && ParseDate(text, &days)) return builder.AppendDate32(c, days);
      return builder.AppendNull(c);
    }
    case Type::kBinary: {
      const void* blob = sqlite3_column_blob(stmt, col);
      const int n = sqlite3_column_bytes(stmt, col);
      builder.AppendString(c, std::string_view(static_cast<const char*>(blob), n));
      return;
    }
    case Type::kUtf8: {
      const unsigned char* text = sqlite3_column_text(stmt, col);
      const int n = sqlite3_column_bytes(stmt, col);
      builder.AppendString(c, std::string_view(reinterpret_cast<const char*>(text), n));
      return;
    }
    case Type::kNull:
      return builder.AppendNull(c);
  }
}

airlock_type_status Fail(airlock_type_error* error, airlock_type_status code,
                         const std::string& message) {
  abi::FillError(error, message);
  return code;
}

}  // namespace

SqliteChannel::SqliteChannel() {
  sqlite3_open_v2(":memory:", &db_,
                  SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);  // as the enclave's engine
  channel_.size = sizeof(channel_);
  channel_.host_data = this;
  channel_.query = &Query;
  channel_.tables = &Tables;
}

SqliteChannel::~SqliteChannel() {
  sqlite3_close_v2(db_);
}

std::string SqliteChannel::Exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) == SQLITE_OK) return {};
  std::string text = message != nullptr ? message : "error";
  sqlite3_free(message);
  return text;
}

bool SqliteChannel::WaitUntilBlocked(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return blocked_; });
}

bool SqliteChannel::WaitUntilUnblocked(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return !blocked_; });
}

airlock_type_status SqliteChannel::Query(void* data, const char* sql, size_t length,
                                         const airlock_type_batch_sink* sink,
                                         airlock_type_error* error) {
  auto* self = static_cast<SqliteChannel*>(data);
  ++self->queries_started_;
  ++self->queries_running_;
  const airlock_type_status rc = self->RunQuery(std::string(sql, length), sink, error);
  --self->queries_running_;
  return rc;
}

airlock_type_status SqliteChannel::RunQuery(const std::string& sql,
                                            const airlock_type_batch_sink* sink,
                                            airlock_type_error* error) {
  sdk::BatchSink out(sink);
  if (sql.find("wait_for_cancel") != std::string::npos) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocked_ = true;
    }
    changed_.notify_all();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!out.cancelled() && std::chrono::steady_clock::now() < give_up) {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, std::chrono::milliseconds(5));
    }
    const bool cancelled = out.cancelled();
    saw_cancel_ = saw_cancel_ || cancelled;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocked_ = false;
    }
    changed_.notify_all();
    if (cancelled) return Fail(error, AIRLOCK_ERR_CANCELLED, "query cancelled");
    return Fail(error, AIRLOCK_ERR_INTERNAL, "the test hook was never cancelled");
  }

  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return Fail(error, AIRLOCK_ERR_INVALID_ARGUMENT, sqlite3_errmsg(db_));
  }
  struct Finalize {
    sqlite3_stmt* s;
    ~Finalize() { sqlite3_finalize(s); }
  } finalize{stmt};
  if (stmt == nullptr) return Fail(error, AIRLOCK_ERR_INVALID_ARGUMENT, "empty statement");
  if (!sqlite3_stmt_readonly(stmt)) {
    return Fail(error, AIRLOCK_ERR_PERMISSION_DENIED, "write attempts are not allowed");
  }

  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return Fail(error, AIRLOCK_ERR_INVALID_ARGUMENT, sqlite3_errmsg(db_));
  }
  const int ncols = sqlite3_column_count(stmt);
  std::vector<Field> fields;
  for (int i = 0; i < ncols; ++i) {
    Field field;
    field.name = sqlite3_column_name(stmt, i);
    const std::string decl = Upper(sqlite3_column_decltype(stmt, i));
    field.type = TypeFromDecl(decl, rc == SQLITE_ROW ? sqlite3_column_type(stmt, i) : SQLITE_NULL);
    if (decl == "TIMESTAMPTZ") field.timezone = "UTC";
    fields.push_back(std::move(field));
  }
  arrow::RecordBatchBuilder builder(fields, batch_rows_);
  if (auto st = out.SendSchema(builder.MakeSchema()); !st.ok()) {
    return Fail(error, static_cast<airlock_type_status>(st.code()), st.message());
  }
  uint64_t rows = 0;
  while (rc == SQLITE_ROW) {
    for (int i = 0; i < ncols; ++i) AppendCell(builder, stmt, i, fields[i].type);
    ++rows;
    if (builder.rows() >= batch_rows_) {
      if (out.cancelled()) return Fail(error, AIRLOCK_ERR_CANCELLED, "query cancelled");
      if (auto st = out.SendBatch(builder.Finish()); !st.ok()) {
        return Fail(error, static_cast<airlock_type_status>(st.code()), st.message());
      }
    }
    rc = sqlite3_step(stmt);
  }
  if (rc != SQLITE_DONE) return Fail(error, AIRLOCK_ERR_INTERNAL, sqlite3_errmsg(db_));
  if (builder.rows() > 0) {
    if (auto st = out.SendBatch(builder.Finish()); !st.ok()) {
      return Fail(error, static_cast<airlock_type_status>(st.code()), st.message());
    }
  }
  out.Progress(rows, 0);
  return AIRLOCK_OK;
}

airlock_type_status SqliteChannel::Tables(void* data, airlock_type_buffer* tables,
                                          airlock_type_error* error) {
  auto* self = static_cast<SqliteChannel*>(data);
  nlohmann::json list = nlohmann::json::array();
  sqlite3_stmt* names = nullptr;
  if (sqlite3_prepare_v2(self->db_,
                         "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1,
                         &names, nullptr) != SQLITE_OK) {
    return Fail(error, AIRLOCK_ERR_INTERNAL, sqlite3_errmsg(self->db_));
  }
  while (sqlite3_step(names) == SQLITE_ROW) {
    const std::string name = reinterpret_cast<const char*>(sqlite3_column_text(names, 0));
    nlohmann::json columns = nlohmann::json::array();
    sqlite3_stmt* info = nullptr;
    sqlite3_prepare_v2(self->db_, ("PRAGMA table_info(\"" + name + "\")").c_str(), -1, &info,
                       nullptr);
    while (info != nullptr && sqlite3_step(info) == SQLITE_ROW) {
      const std::string decl = Upper(reinterpret_cast<const char*>(sqlite3_column_text(info, 2)));
      nlohmann::json column = {
          {"name", reinterpret_cast<const char*>(sqlite3_column_text(info, 1))},
          {"type", arrow::TypeName(TypeFromDecl(decl, SQLITE_NULL))}};
      if (decl == "TIMESTAMPTZ") column["timezone"] = "UTC";  // as the enclave's document
      columns.push_back(std::move(column));
    }
    sqlite3_finalize(info);
    int64_t count = 0;
    sqlite3_stmt* counter = nullptr;
    sqlite3_prepare_v2(self->db_, ("SELECT COUNT(*) FROM \"" + name + "\"").c_str(), -1, &counter,
                       nullptr);
    if (counter != nullptr && sqlite3_step(counter) == SQLITE_ROW) {
      count = sqlite3_column_int64(counter, 0);
    }
    sqlite3_finalize(counter);
    list.push_back({{"name", name}, {"rows", count}, {"columns", columns}});
  }
  sqlite3_finalize(names);
  abi::FillBuffer(tables, nlohmann::json{{"tables", list}}.dump());
  return AIRLOCK_OK;
}

}  // namespace airlock::testing
