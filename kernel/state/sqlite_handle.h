// Small RAII helpers over the SQLite C API for the SQLite state store.
// Internal to kernel/state.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"

namespace airlock::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Resets a reused statement and clears its bindings when the scope ends.
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtScope() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Unavailable("<what>: <sqlite message> (code N)").
Status Error(sqlite3* db, std::string_view what);

Result<Db> Open(const std::string& path, int flags);
// A statement meant to be kept and reused (SQLITE_PREPARE_PERSISTENT).
Result<Stmt> Prepare(sqlite3* db, std::string_view sql);
Status Exec(sqlite3* db, const char* sql);

// Binds text without copying: `text` must outlive the statement's step.
inline int BindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  return sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

inline std::string_view ColumnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return {};
  return std::string_view(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

}  // namespace airlock::sqlite
