#include "row_count.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "pull_query.h"

namespace airlock::connectors::postgres {
namespace {

// Qualified with pg_catalog so that nothing on the role's search_path can
// stand in for the catalog. to_regclass resolves the name exactly as the
// describe's SELECT did (search_path for an unqualified table) and is NULL
// when there is no such relation.
constexpr char kStatsSql[] =
    "SELECT c.relkind, c.relrowsecurity, c.reltuples::float8, c.relpages::int8,"
    " pg_catalog.pg_relation_size(c.oid), pg_catalog.current_setting('block_size')::int8,"
    " pg_catalog.has_any_column_privilege(c.oid, 'SELECT')"
    " FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)";

int64_t IntCell(const PGresult* result, int column) {
  return std::strtoll(PQgetvalue(result, 0, column), nullptr, 10);
}

// The statements of one count, inside the caller's transaction.
Result<int64_t> CountInTransaction(PgConnection& connection, const DatasetConfig& dataset,
                                   int64_t timeout_ms, const Interrupt& interrupt) {
  AIRLOCK_RETURN_IF_ERROR(
      connection
          .Run("SET LOCAL statement_timeout = " + std::to_string(timeout_ms), {}, false, interrupt)
          .status());
  const std::string relation = SourceRelation(dataset);
  AIRLOCK_ASSIGN_OR_RETURN(PgResult stats,
                           connection.Run(kStatsSql, {Param{relation}}, false, interrupt));
  if (PQntuples(stats.get()) != 1) return int64_t{-1};
  RelationStats s;
  s.relkind = PQgetvalue(stats.get(), 0, 0)[0];
  s.row_security = PQgetvalue(stats.get(), 0, 1)[0] == 't';
  s.reltuples = std::strtod(PQgetvalue(stats.get(), 0, 2), nullptr);
  s.relpages = IntCell(stats.get(), 3);
  s.bytes = IntCell(stats.get(), 4);
  s.block_size = IntCell(stats.get(), 5);
  // What `SELECT count(*)` itself requires: a role that may not read the
  // relation is told no figure, counted or estimated.
  const bool can_select = PQgetvalue(stats.get(), 0, 6)[0] == 't';
  if (!can_select || (s.relkind != 'r' && s.relkind != 'm')) return int64_t{-1};
  if (s.bytes > kMaxCountedBytes) return EstimatedRows(s);
  AIRLOCK_ASSIGN_OR_RETURN(
      PgResult counted, connection.Run("SELECT count(*) FROM " + relation, {}, false, interrupt));
  if (PQntuples(counted.get()) != 1) return Status::Internal("count(*) returned no row");
  return IntCell(counted.get(), 0);
}

}  // namespace

int64_t EstimatedRows(const RelationStats& stats) {
  if (stats.row_security || stats.relpages <= 0 || stats.reltuples <= 0 || stats.block_size <= 0) {
    return -1;
  }
  // What the planner does too: rows per page as last measured, times the
  // pages the relation has now.
  const double pages_now = static_cast<double>(stats.bytes / stats.block_size);
  return std::llround(stats.reltuples / static_cast<double>(stats.relpages) * pages_now);
}

Result<int64_t> CountRows(PgConnection& connection, const DatasetConfig& dataset,
                          const PostgresConfig& config, const sdk::Host& host,
                          const Interrupt& interrupt) {
  if (dataset.is_query()) return int64_t{-1};
  const int64_t timeout_ms = config.statement_timeout_ms > 0
                                 ? std::min(config.statement_timeout_ms, kMaxCountMillis)
                                 : kMaxCountMillis;
  AIRLOCK_RETURN_IF_ERROR(connection.Run("BEGIN READ ONLY", {}, false, interrupt).status());
  Result<int64_t> rows = CountInTransaction(connection, dataset, timeout_ms, interrupt);
  // Ends the transaction, aborted or not; the describe goes on outside it.
  const Status ended = connection.Run("ROLLBACK", {}, false, interrupt).status();
  AIRLOCK_RETURN_IF_ERROR(interrupt());
  if (!rows.ok()) {
    const StatusCode code = rows.status().code();
    if (code == StatusCode::kUnavailable) return rows.status();
    // A role without SELECT still gets the columns; it just is not told how
    // many rows there are.
    if (code != StatusCode::kPermissionDenied) {
      host.Warn("describe: rows of dataset '" + dataset.name +
                "' unknown: " + rows.status().message());
    }
    rows = int64_t{-1};
  }
  AIRLOCK_RETURN_IF_ERROR(ended);
  return rows;
}

}  // namespace airlock::connectors::postgres
