#include "kernel/enclave/query_authorizer.h"

#include <vector>

#include "kernel/enclave/sql_surface.h"
#include "kernel/enclave/sqlite_util.h"

namespace airlock::enclave {
namespace {

// SQL identifiers are case-insensitive for ASCII letters only.
std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Lower(const char* text) {
  return Lower(std::string_view(text != nullptr ? text : ""));
}

bool IsSchemaTable(std::string_view lower) {
  return lower == "sqlite_master" || lower == "sqlite_schema" || lower == "sqlite_temp_master" ||
         lower == "sqlite_temp_schema";
}

// The first column of every row of `sql`, as text.
Result<std::vector<std::string>> TextColumn(sqlite3* db, const std::string& sql) {
  AIRLOCK_ASSIGN_OR_RETURN(SqliteStmt stmt, Prepare(db, sql));
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    if (text != nullptr) out.emplace_back(text);
  }
  if (rc != SQLITE_DONE) return Status::Internal(sqlite3_errmsg(db));
  return out;
}

}  // namespace

Status QueryAuthorizer::Install(sqlite3* db) {
  // Eponymous virtual tables (the table-valued functions json_each, dbstat,
  // …) are constructed on first use, and constructing one declares a table,
  // which this authorizer would refuse as a schema change. Constructing them
  // all now lets queries use the allowed ones and get a refusal naming the
  // others. Modules that need arguments or CREATE VIRTUAL TABLE fail here and
  // stay unusable.
  AIRLOCK_ASSIGN_OR_RETURN(auto modules, TextColumn(db, "SELECT name FROM pragma_module_list"));
  for (const std::string& module : modules) {
    modules_.insert(Lower(module));
    sqlite3_stmt* probe = nullptr;
    const std::string sql = "SELECT * FROM " + QuoteIdentifier(module);
    (void)sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &probe, nullptr);
    sqlite3_finalize(probe);
  }
  AIRLOCK_ASSIGN_OR_RETURN(auto schemas, TextColumn(db, "SELECT name FROM pragma_database_list"));
  for (const std::string& schema : schemas) {
    AIRLOCK_ASSIGN_OR_RETURN(auto tables,
                             TextColumn(db, "SELECT name FROM " + QuoteIdentifier(schema) +
                                                ".sqlite_schema WHERE type = 'table'"));
    for (const std::string& table : tables) {
      tables_.emplace(Lower(schema), Lower(table));
      table_names_.insert(Lower(table));
    }
  }
  sqlite3_set_authorizer(db, &QueryAuthorizer::Callback, this);
  return Status::Ok();
}

void QueryAuthorizer::Reset() {
  denied_ = false;
  saw_select_ = false;
  refusal_.clear();
}

int QueryAuthorizer::Callback(void* self, int action, const char* arg3, const char* arg4,
                              const char* db, const char* /*trigger*/) {
  return static_cast<QueryAuthorizer*>(self)->Authorize(action, arg3, arg4, db);
}

int QueryAuthorizer::Authorize(int action, const char* arg3, const char* arg4, const char* db) {
  switch (action) {
    case SQLITE_SELECT:
      saw_select_ = true;
      return SQLITE_OK;
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_READ: {
      // arg3: the table, arg4: the column, db: the schema. A column read
      // names the table as defined (an eponymous virtual table is a table of
      // "main"). A table referenced without reading any column (count(*))
      // is named as the query wrote it, with a schema only if the query gave
      // one — and that name may also be a CTE's.
      const std::string table = Lower(arg3);
      if (IsSchemaTable(table) || IsAllowedTableFunction(table) || IsOwnTable(db, table)) {
        return SQLITE_OK;
      }
      const bool no_column = arg4 == nullptr || *arg4 == '\0';
      if (no_column && !IsModule(table)) return SQLITE_OK;  // a CTE
      return Deny(TableFunctionRefusal(arg3 != nullptr ? arg3 : ""));
    }
    case SQLITE_FUNCTION: {
      // arg4: the function's registered name.
      const std::string_view name = arg4 != nullptr ? arg4 : "";
      if (IsAllowedSqlFunction(name)) return SQLITE_OK;
      return Deny(FunctionRefusal(name));
    }
    default:
      return Deny();
  }
}

int QueryAuthorizer::Deny(std::string message) {
  if (!denied_) refusal_ = std::move(message);
  denied_ = true;
  return SQLITE_DENY;
}

bool QueryAuthorizer::IsOwnTable(const char* schema, std::string_view table) const {
  // Real tables shadow eponymous virtual tables of the same name, so a name
  // found in any schema is that table.
  if (schema == nullptr) return table_names_.count(table) != 0;
  return tables_.count(std::make_pair(Lower(schema), std::string(table))) != 0;
}

bool QueryAuthorizer::IsModule(std::string_view table) const {
  return modules_.count(table) != 0 || table.rfind("pragma_", 0) == 0;
}

}  // namespace airlock::enclave
