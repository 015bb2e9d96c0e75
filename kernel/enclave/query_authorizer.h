// The SQLite authorizer of a sealed enclave's query connections.
//
// It allows SELECT (with WITH RECURSIVE), reads of the enclave's own tables
// (any lane) and of the schema tables, the table-valued functions and the SQL
// functions allowed by sql_surface.h, and refuses everything else at prepare
// time: writes, DDL, ATTACH/DETACH, PRAGMA (and its pragma_* functions),
// transactions, ANALYZE, savepoints, other functions and other eponymous
// virtual tables (dbstat, sqlite_stmt, …). A refused function or table-valued
// function gets a message naming it (sql_surface.h); other refusals leave
// SQLite's own message.
//
// Thread-safety: one authorizer per connection, used by the thread that
// prepares statements on it.
#pragma once

#include <sqlite3.h>

#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "airlock/cpp/status.hpp"

namespace airlock::enclave {

class QueryAuthorizer {
 public:
  QueryAuthorizer() = default;
  QueryAuthorizer(const QueryAuthorizer&) = delete;
  QueryAuthorizer& operator=(const QueryAuthorizer&) = delete;

  // Learns `db`'s tables and virtual table modules and installs itself as its
  // authorizer. Call last, once the connection is set up (lanes attached,
  // pragmas run): afterwards only queries pass. The authorizer must stay at
  // this address for as long as `db` is used.
  Status Install(sqlite3* db);

  // Forgets what the previous statement's preparation saw.
  void Reset();

  // What the authorizer saw since Reset.
  bool denied() const { return denied_; }
  bool saw_select() const { return saw_select_; }
  // The first refusal's own message; empty when the first refusal has none.
  const std::string& refusal() const { return refusal_; }

 private:
  static int Callback(void* self, int action, const char* arg3, const char* arg4, const char* db,
                      const char* trigger);
  int Authorize(int action, const char* arg3, const char* arg4, const char* db);
  int Deny(std::string message = {});
  bool IsOwnTable(const char* schema, std::string_view table) const;
  bool IsModule(std::string_view table) const;

  // ASCII-lowercased, fixed by Install.
  std::set<std::pair<std::string, std::string>> tables_;  // (schema, table)
  std::set<std::string, std::less<>> table_names_;        // table, in any schema
  std::set<std::string, std::less<>> modules_;            // virtual table modules

  bool denied_ = false;
  bool saw_select_ = false;
  std::string refusal_;
};

}  // namespace airlock::enclave
