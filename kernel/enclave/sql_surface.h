// The SQL surface of a sealed enclave: which SQL functions and table-valued
// functions a query may call. This is the one place the lists live; the query
// engine's authorizer (query_authorizer.h) consults it at prepare time and
// docs/enclaves.md ("Enclave SQL surface") states it for users.
//
// ALLOW-LIST. A query may call only the functions named in AllowedSqlFunctions
// (scalar, aggregate and window functions analysts use: text, numbers, math,
// dates and times, JSON) and read only the enclave's own tables, the schema
// table and the table-valued functions in AllowedTableFunctions. Everything
// else SQLite registers, now or in a later release, is refused when the
// statement is prepared with permission_denied and a message naming it
// (FunctionRefusal, TableFunctionRefusal).
//
// RefusedSqlFunctions / RefusedTableFunctions list what SQLite (as Debian
// builds it) registers and we refuse on purpose, each with the reason. They
// enforce nothing — not being allowed is enough — but the surface test
// (tests/kernel/enclave/sql_surface_test.cc) requires every function a
// connection registers to be in exactly one of the two lists, so a SQLite
// upgrade that adds a function fails the test until someone decides.
//
// SCOPE. Only the query connections carry the authorizer. The enclave's own
// statements (ingestion's CREATE/INSERT … SELECT from the batch_feed virtual
// table, ALTER TABLE … RENAME, the writable_schema restore of declared types)
// run before sealing on the writer connections, which have no authorizer and
// never execute caller SQL; SQLite's internal functions they use
// (sqlite_rename_table, …) are not reachable from a query.
//
// Thread-safety: everything here is immutable.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace airlock::enclave {

struct RefusedSqlName {
  std::string_view name;
  std::string_view reason;
};

// Lowercase, each name once. A refused table name ending in '*' stands for
// every name with that prefix ("pragma_*").
std::span<const std::string_view> AllowedSqlFunctions();
std::span<const RefusedSqlName> RefusedSqlFunctions();
std::span<const std::string_view> AllowedTableFunctions();
std::span<const RefusedSqlName> RefusedTableFunctions();

// ASCII case-insensitive membership in the allow-lists.
bool IsAllowedSqlFunction(std::string_view name);
bool IsAllowedTableFunction(std::string_view name);

// "function fts3_tokenizer is not allowed in an enclave query".
std::string FunctionRefusal(std::string_view name);
// "table-valued function dbstat is not allowed in an enclave query".
std::string TableFunctionRefusal(std::string_view name);

}  // namespace airlock::enclave
