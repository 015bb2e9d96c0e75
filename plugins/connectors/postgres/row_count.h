// How many rows a dataset holds, for the catalog (DatasetInfo::rows), told
// only where it is cheap and cannot be wrong by construction:
//
//  - A named query, view, partitioned table or foreign table: -1. Counting
//    would run the query (or every partition, or the remote source), and
//    pg_class holds no usable figure for them.
//  - A relation the role may not SELECT from (not even one column): -1.
//  - A table or materialized view whose main fork is at most
//    kMaxCountedBytes: the exact `count(*)`, which reads at most that much
//    and sees what the role sees (row-level security included).
//  - A larger one: the planner's own estimate, reltuples/relpages scaled to
//    the relation's current size, once ANALYZE or VACUUM has measured it
//    (relpages > 0, reltuples > 0). Never measured (reltuples -1 on
//    PostgreSQL 14+, 0 with relpages 0 before), last measured empty
//    (reltuples 0: no density to scale), or under row-level security (the
//    estimate counts rows the role may not see): -1.
//
// The statements run in a read-only transaction under statement_timeout
// (the configured one, at most kMaxCountMillis); a count that runs out of
// time leaves -1.
#pragma once

#include <cstdint>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "config.h"
#include "pg_connection.h"

namespace airlock::connectors::postgres {

// The files connector's bound for reading a source whole to count it.
inline constexpr int64_t kMaxCountedBytes = int64_t{64} << 20;
inline constexpr int64_t kMaxCountMillis = 5000;

// What pg_class and the storage say about a relation.
struct RelationStats {
  char relkind = 0;
  bool row_security = false;
  double reltuples = -1;
  int64_t relpages = 0;
  int64_t bytes = 0;  // pg_relation_size: the main fork now
  int64_t block_size = 8192;
};

// The estimate for a relation too large to count: -1 when there is none.
int64_t EstimatedRows(const RelationStats& stats);

// The row count of `dataset` under the rule above, or -1. Fails only when
// the describe as a whole must: the connection is lost (Unavailable) or
// `interrupt` fired (its status). Any other failure (no SELECT, the count's
// statement timeout) is -1, logged as a warning through `host` unless it is
// the missing SELECT privilege.
Result<int64_t> CountRows(PgConnection& connection, const DatasetConfig& dataset,
                          const PostgresConfig& config, const sdk::Host& host,
                          const Interrupt& interrupt);

}  // namespace airlock::connectors::postgres
