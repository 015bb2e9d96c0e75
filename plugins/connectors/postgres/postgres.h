// The postgres connector: tables, views and named queries of one PostgreSQL
// database, delivered as scoped Arrow record batches. The scope is pushed
// into the source: only allowed columns are selected, the row filter is a
// parameterised WHERE clause and masks are computed by the server.
//
// Every describe and pull opens its own connection (credentials are resolved
// then and wiped right after the handshake) and closes it before returning.
// A pull reads through a server-side cursor in batches of batch_rows, one
// FETCH ahead of the batch being converted, inside a read-only REPEATABLE
// READ transaction: memory stays bounded by about two batches.
//
// Thread-safety: Describe and Pull may run concurrently (one connection each;
// the configuration is immutable after Create).
#pragma once

#include <memory>

#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"
#include "pg_connection.h"
#include "pg_types.h"
#include "pull_query.h"

namespace airlock::connectors::postgres {

class PostgresConnector : public sdk::Connector {
 public:
  // InvalidArgument naming the key for a bad configuration. Does not connect.
  static Result<std::unique_ptr<PostgresConnector>> Create(const Json& config,
                                                           const sdk::Host& host);

  // Every configured dataset with the columns and types the source reports,
  // and its rows where they can be told cheaply (row_count.h). A dataset
  // whose relation is missing or not visible to the role (or whose query
  // does not parse) is left out with a warning in the log; a failure to
  // connect or any other server error fails the describe (a row count
  // refused or timed out by the server only leaves the rows unknown).
  Result<Catalog> Describe() override;

  // Streams the scoped dataset. Statuses: Unavailable (unreachable, TLS
  // failed), Unauthenticated (credentials refused), NotFound (no such dataset
  // or table), PermissionDenied (no SELECT), TypeNotRepresentable (an
  // unmasked column without mapping), InvalidArgument (scope does not fit),
  // Cancelled (the sink asked to stop: the server query is cancelled too),
  // DeadlineExceeded (pull_timeout_ms or statement_timeout_ms).
  Status Pull(const PullSpec& spec, sdk::BatchSink& sink) override;

 private:
  PostgresConnector(PostgresConfig config, sdk::Host host)
      : config_(std::move(config)), host_(std::move(host)) {}

  Result<const DatasetConfig*> Resolve(const PullSpec& spec) const;
  Result<std::vector<SourceColumn>> Columns(PgConnection& connection, const DatasetConfig& dataset,
                                            const Interrupt& interrupt) const;
  // Streams `query` into `sink`; a non-empty `key` goes with the schema as
  // "airlock.key" (primary_key.h).
  Status Stream(PgConnection& connection, const PullQuery& query,
                const std::vector<std::string>& key, sdk::BatchSink& sink,
                const Interrupt& interrupt, uint64_t* rows) const;

  const PostgresConfig config_;
  const sdk::Host host_;
};

}  // namespace airlock::connectors::postgres
