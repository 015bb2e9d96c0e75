// PostgreSQL statements, parsed by PostgreSQL's grammar, rewritten as the
// enclave's SQL. What has an equivalent is translated (casts, PostgreSQL's
// NULL ordering, LIKE's case sensitivity, functions such as date_trunc,
// extract and string_agg, session functions such as version()); what has
// none is refused with 0A000 naming the construct. Parameters get the type
// the client declared, else the type of what they are compared with or
// cast to, as PostgreSQL infers it, else text: a number bound to a
// parameter compared with an integer column reaches the engine as a number,
// never as text that silently equals nothing. The enclave's read-only rules
// and function allow-list still decide what runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "airlock/cpp/values.hpp"
#include "grant_schema.h"
#include "wire.h"

namespace airlock::tunnels::pgwire {

enum class StatementKind {
  kQuery,          // rows: SELECT, VALUES, TABLE, WITH ... SELECT
  kCopyOut,        // COPY (query) TO STDOUT
  kDeclareCursor,  // DECLARE name CURSOR FOR query: `sql` is the query
  kFetch,          // FETCH / MOVE: `cursor`
  kCloseCursor,    // CLOSE name | ALL: `cursor`
};

// The cursor a DECLARE, FETCH, MOVE or CLOSE names, and how far to go.
struct CursorCommand {
  std::string name;    // empty: CLOSE ALL
  uint64_t count = 0;  // FETCH/MOVE: rows; 0 means all that are left
  bool move = false;   // MOVE: skip the rows
  bool hold = false;   // DECLARE ... WITH HOLD: outlives COMMIT
};

struct CopyFormat {
  bool csv = false;
  bool header = false;
  char delimiter = '\t';
  char quote = '"';
  std::string null_text = "\\N";
};

// A parameter whose bound value is rewritten before it is substituted: a
// LIKE pattern becomes the engine's case-sensitive GLOB pattern.
// Derived parameters are numbered from here on, beyond any client's $n.
inline constexpr int kFirstDerivedParameter = 100000;

struct DerivedParameter {
  int source = 0;  // the client's $n
  enum class Rewrite { kLikeToGlob } rewrite = Rewrite::kLikeToGlob;
};

struct Translation {
  StatementKind kind = StatementKind::kQuery;
  // The enclave's SQL; $n marks parameter n (1-based). Numbers beyond the
  // client's parameters are `derived` ones, in order.
  std::string sql;
  // The type of each client parameter: declared, inferred, else text.
  std::vector<uint32_t> parameter_types;
  std::vector<DerivedParameter> derived;
  // The PostgreSQL type of each result column (0 where unknown); empty when
  // the columns are not known (SELECT * over what the grant does not list).
  std::vector<uint32_t> column_types;
  CopyFormat copy;       // kCopyOut
  CursorCommand cursor;  // kDeclareCursor, kFetch, kCloseCursor
  // The statement reads pg_catalog / information_schema (catalog.h): it
  // runs on the connection's catalog database, never in the enclave.
  bool catalog = false;
};

// What session functions answer: current_user, current_database() ...
struct SessionFacts {
  std::string user;
  std::string database;
  std::string application_name;
};

// Translates the one statement in `sql`. `declared`: the parameter types
// the client gave in Parse (0 where it gave none).
std::variant<Translation, PgError> Translate(std::string_view sql, const GrantSchema& schema,
                                             const std::vector<uint32_t>& declared,
                                             const SessionFacts& facts);

// As Translate, for a statement already parsed (one of "stmts") from
// `source`.
std::variant<Translation, PgError> TranslateParsed(std::string_view source, const Json& raw_stmt,
                                                   const GrantSchema& schema,
                                                   const std::vector<uint32_t>& declared,
                                                   const SessionFacts& facts);

// A LIKE pattern (escape character `escape`, 0 for none) as a GLOB pattern
// that matches the same strings, case-sensitively. 22025 when it ends with
// the escape character.
std::variant<std::string, PgError> LikeToGlob(std::string_view pattern, char escape);

// "PostgreSQL 15.0 (airlock) ...": what version() answers.
std::string VersionString();

}  // namespace airlock::tunnels::pgwire
