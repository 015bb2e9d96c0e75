#include "kernel/state/sqlite_handle.h"

namespace airlock::sqlite {

Status Error(sqlite3* db, std::string_view what) {
  if (db == nullptr) return Status::Unavailable(std::string(what) + ": out of memory");
  return Status::Unavailable(std::string(what) + ": " + sqlite3_errmsg(db) + " (code " +
                             std::to_string(sqlite3_extended_errcode(db)) + ")");
}

Result<Db> Open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return Error(raw, "cannot open state store " + path);
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Result<Stmt> Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return Error(db, "cannot prepare statement");
  return stmt;
}

Status Exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string text = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return Status::Unavailable(text + " (code " + std::to_string(rc) + ")");
}

}  // namespace airlock::sqlite
