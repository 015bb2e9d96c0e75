#include "kernel/enclave/sql_surface.h"

#include <algorithm>
#include <array>

namespace airlock::enclave {
namespace {

using namespace std::string_view_literals;

// Grouped by what they are for; lowercase, each name once.
constexpr std::array kAllowedFunctions = {
    // Text and values.
    "abs"sv, "char"sv, "coalesce"sv, "format"sv, "glob"sv, "hex"sv, "ifnull"sv, "iif"sv, "instr"sv,
    "length"sv, "like"sv, "lower"sv, "ltrim"sv, "max"sv, "min"sv, "nullif"sv, "printf"sv, "quote"sv,
    "replace"sv, "round"sv, "rtrim"sv, "sign"sv, "soundex"sv, "substr"sv, "substring"sv, "trim"sv,
    "typeof"sv, "unicode"sv, "upper"sv,
    // Query planner hints: they only weigh a condition.
    "likelihood"sv, "likely"sv, "unlikely"sv,
    // Sampling (ORDER BY random() LIMIT n) and generated keys; values are
    // bounded by the enclave's SQLITE_LIMIT_LENGTH.
    "random"sv, "randomblob"sv,
    // Aggregates (max and min above are both the scalar and the aggregate).
    "avg"sv, "count"sv, "group_concat"sv, "sum"sv, "total"sv,
    // Window functions.
    "cume_dist"sv, "dense_rank"sv, "first_value"sv, "lag"sv, "last_value"sv, "lead"sv,
    "nth_value"sv, "ntile"sv, "percent_rank"sv, "rank"sv, "row_number"sv,
    // Dates and times.
    "current_date"sv, "current_time"sv, "current_timestamp"sv, "date"sv, "datetime"sv,
    "julianday"sv, "strftime"sv, "time"sv, "unixepoch"sv,
    // Math (SQLITE_ENABLE_MATH_FUNCTIONS).
    "acos"sv, "acosh"sv, "asin"sv, "asinh"sv, "atan"sv, "atan2"sv, "atanh"sv, "ceil"sv, "ceiling"sv,
    "cos"sv, "cosh"sv, "degrees"sv, "exp"sv, "floor"sv, "ln"sv, "log"sv, "log10"sv, "log2"sv,
    "mod"sv, "pi"sv, "pow"sv, "power"sv, "radians"sv, "sin"sv, "sinh"sv, "sqrt"sv, "tan"sv,
    "tanh"sv, "trunc"sv,
    // JSON, including the -> and ->> operators.
    "->"sv, "->>"sv, "json"sv, "json_array"sv, "json_array_length"sv, "json_extract"sv,
    "json_group_array"sv, "json_group_object"sv, "json_insert"sv, "json_object"sv, "json_patch"sv,
    "json_quote"sv, "json_remove"sv, "json_replace"sv, "json_set"sv, "json_type"sv, "json_valid"sv,
    // Plain value functions of later SQLite releases (3.41-3.48), decided
    // now so that an upgrade keeps them: string_agg (group_concat),
    // concat/concat_ws, if (iif), octet_length, unhex, timediff.
    "concat"sv, "concat_ws"sv, "if"sv, "octet_length"sv, "string_agg"sv, "timediff"sv, "unhex"sv};

constexpr std::array kRefusedFunctions = {
    RefusedSqlName{"load_extension", "loads native code into the enclave"},
    RefusedSqlName{"fts3_tokenizer",
                   "returns a raw pointer (an address in the enclave) and, given one, installs "
                   "a tokenizer that SQLite calls through it"},
    RefusedSqlName{"fts5", "returns a pointer to the FTS5 extension API"},
    RefusedSqlName{"fts5_source_id", "describes the engine build; no full-text tables exist"},
    RefusedSqlName{"bm25", "full-text auxiliary function; a sealed enclave has no FTS tables"},
    RefusedSqlName{"highlight", "full-text auxiliary function; a sealed enclave has no FTS tables"},
    RefusedSqlName{"snippet", "full-text auxiliary function; a sealed enclave has no FTS tables"},
    RefusedSqlName{"match", "full-text operator; a sealed enclave has no FTS tables"},
    RefusedSqlName{"matchinfo", "full-text auxiliary function; a sealed enclave has no FTS tables"},
    RefusedSqlName{"offsets", "full-text auxiliary function; a sealed enclave has no FTS tables"},
    RefusedSqlName{"optimize",
                   "full-text maintenance function; a sealed enclave has no FTS tables"},
    RefusedSqlName{"rtreecheck", "R-tree integrity check; a sealed enclave has no R-tree tables"},
    RefusedSqlName{"rtreedepth", "decodes raw R-tree node blobs; no analytic use"},
    RefusedSqlName{"rtreenode", "decodes raw R-tree node blobs; no analytic use"},
    RefusedSqlName{"sqlite_compileoption_get", "describes the engine build"},
    RefusedSqlName{"sqlite_compileoption_used", "describes the engine build"},
    RefusedSqlName{"sqlite_source_id", "describes the engine build"},
    RefusedSqlName{"sqlite_version", "describes the engine build"},
    RefusedSqlName{"sqlite_log", "writes to SQLite's error log"},
    RefusedSqlName{"changes", "state of a read-only connection; always meaningless here"},
    RefusedSqlName{"total_changes", "state of a read-only connection; always meaningless here"},
    RefusedSqlName{"last_insert_rowid", "state of a read-only connection; always meaningless here"},
    RefusedSqlName{"subtype", "exposes the engine's internal value tags; no analytic use"},
    RefusedSqlName{"zeroblob",
                   "serves incremental blob writes, which a read-only enclave never does"},
    // SQLite's own internal functions: not callable from SQL unless a test
    // control enables them, listed so that the surface test may enable them.
    RefusedSqlName{"affinity", "SQLite internal (query planner)"},
    RefusedSqlName{"expr_compare", "SQLite internal (query planner)"},
    RefusedSqlName{"expr_implies_expr", "SQLite internal (query planner)"},
    RefusedSqlName{"implies_nonnull_row", "SQLite internal (query planner)"},
    RefusedSqlName{"sqlite_offset", "SQLite internal (storage offsets)"},
    RefusedSqlName{"sqlite_drop_column", "SQLite internal (ALTER TABLE)"},
    RefusedSqlName{"sqlite_rename_column", "SQLite internal (ALTER TABLE)"},
    RefusedSqlName{"sqlite_rename_quotefix", "SQLite internal (ALTER TABLE)"},
    RefusedSqlName{"sqlite_rename_table", "SQLite internal (ALTER TABLE)"},
    RefusedSqlName{"sqlite_rename_test", "SQLite internal (ALTER TABLE)"},
};

constexpr std::array kAllowedTables = {"json_each"sv, "json_tree"sv};

constexpr std::array kRefusedTables = {
    RefusedSqlName{"dbstat", "shows the storage layout of the enclave's pages"},
    RefusedSqlName{"sqlite_stmt", "shows the connection's prepared statements"},
    RefusedSqlName{"fts3tokenize", "runs full-text tokenizers; no analytic use"},
    RefusedSqlName{"fts4aux", "full-text index internals; a sealed enclave has no FTS tables"},
    RefusedSqlName{"pragma_*", "PRAGMA functions are refused like PRAGMA statements"},
    // Modules that only serve CREATE VIRTUAL TABLE, which a sealed enclave
    // refuses like all DDL.
    RefusedSqlName{"fts3", "needs CREATE VIRTUAL TABLE"},
    RefusedSqlName{"fts4", "needs CREATE VIRTUAL TABLE"},
    RefusedSqlName{"fts5", "needs CREATE VIRTUAL TABLE"},
    RefusedSqlName{"fts5vocab", "needs CREATE VIRTUAL TABLE"},
    RefusedSqlName{"rtree", "needs CREATE VIRTUAL TABLE"},
    RefusedSqlName{"rtree_i32", "needs CREATE VIRTUAL TABLE"},
    RefusedSqlName{"geopoly", "needs CREATE VIRTUAL TABLE"},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

template <size_t N>
bool Contains(const std::array<std::string_view, N>& list, std::string_view name) {
  return std::any_of(list.begin(), list.end(),
                     [&](std::string_view entry) { return EqualsIgnoreCase(entry, name); });
}

}  // namespace

std::span<const std::string_view> AllowedSqlFunctions() {
  return kAllowedFunctions;
}
std::span<const RefusedSqlName> RefusedSqlFunctions() {
  return kRefusedFunctions;
}
std::span<const std::string_view> AllowedTableFunctions() {
  return kAllowedTables;
}
std::span<const RefusedSqlName> RefusedTableFunctions() {
  return kRefusedTables;
}

bool IsAllowedSqlFunction(std::string_view name) {
  return Contains(kAllowedFunctions, name);
}
bool IsAllowedTableFunction(std::string_view name) {
  return Contains(kAllowedTables, name);
}

std::string FunctionRefusal(std::string_view name) {
  return "function " + std::string(name) + " is not allowed in an enclave query";
}

std::string TableFunctionRefusal(std::string_view name) {
  return "table-valued function " + std::string(name) + " is not allowed in an enclave query";
}

}  // namespace airlock::enclave
