// The mongodb connector: collections (optionally behind a configured
// aggregation pipeline) of one database, delivered as scoped Arrow record
// batches streamed from a server-side cursor.
//
// Thread-safety: Describe and Pull may run concurrently; each call opens its
// own MongoSession and the configuration is immutable after Create.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "collections.h"
#include "config.h"
#include "mongo_session.h"

namespace airlock::connectors::mongodb {

class MongoConnector : public sdk::Connector {
 public:
  // InvalidArgument naming the key for a bad configuration. Does not connect
  // and resolves no secret.
  static Result<std::unique_ptr<MongoConnector>> Create(const Json& config, const sdk::Host& host);

  // The configured datasets (or, with none configured, every collection of
  // the database). Columns come from the declaration, else from a sample;
  // when the sample cannot be read (no secrets on this host, server down) a
  // configured dataset is listed without columns and a warning is logged.
  // Rows: the count of a dataset that is a plain collection without a
  // pipeline (collections.h), else -1; describe connects for it even when
  // every column is declared, and a failed count only leaves -1.
  Result<Catalog> Describe() override;

  // Streams the scoped dataset. Errors: NotFound (dataset not configured, or
  // collection missing), Unavailable, Unauthenticated, PermissionDenied,
  // TypeNotRepresentable, InvalidArgument (scope or pipeline), Cancelled.
  Status Pull(const PullSpec& spec, sdk::BatchSink& sink) override;

 private:
  MongoConnector(MongoConfig config, sdk::Host host)
      : config_(std::move(config)), host_(std::move(host)) {}

  Result<DatasetConfig> Resolve(const PullSpec& spec) const;
  // The dataset's DatasetInfo::rows: -1 without a session or listing.
  int64_t Rows(const MongoSession* session, const Result<std::vector<CollectionInfo>>& collections,
               const DatasetConfig& dataset) const;
  Status CheckCollection(const MongoSession& session, const std::string& collection) const;
  Result<std::vector<SourceColumn>> Columns(const MongoSession& session,
                                            const DatasetConfig& dataset) const;
  Status Stream(const MongoSession& session, const DatasetConfig& dataset,
                const std::vector<SourceColumn>& columns, const DatasetScope& scope,
                sdk::BatchSink& sink, uint64_t* rows) const;

  const MongoConfig config_;
  const sdk::Host host_;
};

}  // namespace airlock::connectors::mongodb
