// Small SQLite helpers shared by ingestion and query execution: RAII handles,
// identifier quoting, and the mapping between Arrow logical types and the
// enclave's SQLite column types.
//
// TYPE MAPPING (Arrow -> declared SQLite type; storage):
//   bool      BOOLEAN     integer 0/1
//   int32     INT         integer
//   int64     BIGINT      integer
//   float64   DOUBLE      real
//   utf8      TEXT        text
//   binary    BLOB        blob
//   date32    DATE        text 'YYYY-MM-DD'
//   timestamp TIMESTAMP   text 'YYYY-MM-DD HH:MM:SS[.ffffff]'      (naive)
//             TIMESTAMPTZ text 'YYYY-MM-DD HH:MM:SS[.ffffff]+00'   (UTC instant)
//   time64    TIME        text 'HH:MM:SS[.ffffff]'
//   null      VOID        null
// The text forms are exactly arrow::FormatDate32/FormatTimestamp/FormatTime.
// DATE/TIMESTAMP/TIME/BOOLEAN/VOID get NUMERIC affinity, which leaves these
// texts untouched (they are not numeric literals); ingestion fills temporal
// columns declared TEXT and restores these declared types before any query
// (StagingDeclaredType, RestoreDeclaredTypes). Reading back, a declared
// type maps to the same Arrow type (timestamps with a zone come back as UTC).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::enclave {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct SqliteFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;
using SqliteStmt = std::unique_ptr<sqlite3_stmt, SqliteFinalizer>;

// Opens `uri` (SQLITE_OPEN_URI is added to `flags`); the message names `what`.
Result<SqliteDb> OpenDatabase(const std::string& uri, int flags, std::string_view what);

// Runs statements without results; the error carries SQLite's message.
Status Exec(sqlite3* db, const std::string& sql);

// Prepares one statement.
Result<SqliteStmt> Prepare(sqlite3* db, std::string_view sql);

// "name" with embedded double quotes doubled.
std::string QuoteIdentifier(std::string_view name);

// The declared SQLite type for an Arrow field (see the table above).
const char* DeclaredType(const arrow::Field& field);

// The type a column is declared with while it is being filled: TEXT for the
// temporal types (DATE, TIMESTAMP[TZ], TIME), DeclaredType otherwise. Their
// declared types have NUMERIC affinity, so SQLite would try to read every
// temporal text as a number on insert (sqlite3AtoF, ~5% of the writer's CPU)
// only to keep it as the same text: no text form above looks like a number,
// so the stored values are the same under either affinity.
const char* StagingDeclaredType(const arrow::Field& field);

// Replaces the definition of table `table` (no rows are touched) by
// `create_table` — the same columns, in order, with their final declared
// types — and makes every connection reload the schema. Only for a definition
// that differs from the current one in declared types whose affinity does not
// change a stored value (StagingDeclaredType -> DeclaredType). Not inside a
// transaction.
Status RestoreDeclaredTypes(sqlite3* db, std::string_view table, const std::string& create_table);

// The Arrow type a declared SQLite type maps back to; nullopt for other names.
std::optional<arrow::Field> FieldFromDeclaredType(std::string_view name, const char* decltype_text);

// Allocation-free formatting into `out` (at least kMaxTemporalText bytes);
// returns the length. Identical output to the arrow::Format* helpers.
inline constexpr size_t kMaxTemporalText = 48;
size_t FormatDate32To(char* out, int32_t days);
size_t FormatTimestampTo(char* out, int64_t micros, bool with_tz);
size_t FormatTimeTo(char* out, int64_t micros);

// Parses the text forms above; nullopt when `text` is not exactly such a value.
std::optional<int32_t> ParseDate32(std::string_view text);
std::optional<int64_t> ParseTimestamp(std::string_view text, bool with_tz);
std::optional<int64_t> ParseTime(std::string_view text);

}  // namespace airlock::enclave
