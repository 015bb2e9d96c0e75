// The key a pull reports to the enclave (schema metadata "airlock.key", see
// airlock/cpp/batch.hpp), so that the enclave indexes it once instead of
// SQLite building an automatic index for every join:
//
//  - A table (plain or partitioned) with a primary key: its columns, in key
//    order, read from pg_catalog (pg_index.indisprimary) for the relation
//    to_regclass resolves, as row_count.h does.
//  - A named query, a view, a table without a primary key: no key.
//  - A key is reported only when every key column is delivered unmasked
//    (a scope may narrow the columns or mask one): otherwise no key.
//
// The enclave's index is not unique, so a key changed between this lookup
// and the pull's snapshot costs at most a useless index, never a wrong answer.
// The lookup runs in its own read-only transaction under statement_timeout
// (the configured one, at most kMaxKeyLookupMillis).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"
#include "pg_connection.h"
#include "pull_query.h"

namespace airlock::connectors::postgres {

inline constexpr int64_t kMaxKeyLookupMillis = 5000;

// The primary key columns of `dataset`'s relation in key order; empty for a
// named query or a relation without one. Fails only when the pull must: the
// connection is lost (Unavailable) or `interrupt` fired (its status). Any
// other failure is no key, logged as a warning through `host`.
Result<std::vector<std::string>> PrimaryKey(PgConnection& connection, const DatasetConfig& dataset,
                                            const PostgresConfig& config, const sdk::Host& host,
                                            const Interrupt& interrupt);

// `key` if every one of its columns is among `query`'s output and unmasked
// by `scope`; otherwise empty.
std::vector<std::string> DeliveredKey(const std::vector<std::string>& key, const PullQuery& query,
                                      const DatasetScope& scope);

}  // namespace airlock::connectors::postgres
