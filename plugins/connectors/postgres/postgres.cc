#include "postgres.h"

#include <chrono>
#include <limits>
#include <string>

#include "batch_decoder.h"
#include "primary_key.h"
#include "row_count.h"

namespace airlock::connectors::postgres {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char kCursor[] = "airlock_pull";

}  // namespace

Result<std::unique_ptr<PostgresConnector>> PostgresConnector::Create(const Json& config,
                                                                     const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(PostgresConfig parsed, ParseConfig(config));
  // A relative CA path is relative to the kernel configuration's directory.
  if (!parsed.ca_file.empty()) parsed.ca_file = host.ResolvePath(parsed.ca_file);
  return std::unique_ptr<PostgresConnector>(new PostgresConnector(std::move(parsed), host));
}

Result<const DatasetConfig*> PostgresConnector::Resolve(const PullSpec& spec) const {
  for (const auto& d : config_.datasets) {
    if (d.name != spec.dataset) continue;
    // The object, when given, must be this dataset's: a pull never reads a
    // relation the configuration does not name.
    if (!spec.object.empty() && spec.object != d.name && spec.object != d.object()) {
      return Status::NotFound("dataset '" + d.name + "' has object '" + d.object() + "', not '" +
                              spec.object + "'");
    }
    return &d;
  }
  return Status::NotFound("no dataset '" + spec.dataset + "' is configured");
}

Result<std::vector<SourceColumn>> PostgresConnector::Columns(PgConnection& connection,
                                                             const DatasetConfig& dataset,
                                                             const Interrupt& interrupt) const {
  AIRLOCK_ASSIGN_OR_RETURN(
      PgResult described,
      connection.Describe("SELECT * FROM " + SourceRelation(dataset), interrupt));
  return ResolveColumns(connection, described.get(), interrupt);
}

Result<Catalog> PostgresConnector::Describe() {
  const auto deadline = config_.pull_timeout_ms > 0
                            ? Clock::now() + std::chrono::milliseconds(config_.pull_timeout_ms)
                            : Clock::time_point::max();
  const Interrupt interrupt = [deadline]() -> Status {
    if (Clock::now() >= deadline)
      return Status::DeadlineExceeded("describe exceeded pull_timeout_ms");
    return Status::Ok();
  };
  AIRLOCK_ASSIGN_OR_RETURN(auto connection, PgConnection::Connect(config_, host_));
  Catalog catalog;
  for (const auto& dataset : config_.datasets) {
    auto columns = Columns(*connection, dataset, interrupt);
    if (!columns.ok()) {
      const StatusCode code = columns.status().code();
      // One dataset the role cannot see must not hide the others; anything
      // else (the connection, the server) fails the whole describe.
      if (code == StatusCode::kNotFound || code == StatusCode::kPermissionDenied ||
          code == StatusCode::kInvalidArgument) {
        host_.Warn("describe skips " +
                   columns.status().WithContext("dataset '" + dataset.name + "'").message());
        continue;
      }
      return columns.status().WithContext("dataset '" + dataset.name + "'");
    }
    DatasetInfo info;
    info.name = dataset.name;
    info.object = dataset.object();
    info.description = dataset.description;
    info.tags = dataset.tags;
    for (const auto& column : *columns) {
      info.columns.push_back({column.name, CatalogTypeName(column)});
    }
    auto rows = CountRows(*connection, dataset, config_, host_, interrupt);
    if (!rows.ok()) return rows.status().WithContext("dataset '" + dataset.name + "'");
    info.rows = *rows;
    catalog.datasets.push_back(std::move(info));
  }
  return catalog;
}

Status PostgresConnector::Pull(const PullSpec& spec, sdk::BatchSink& sink) {
  AIRLOCK_ASSIGN_OR_RETURN(const DatasetConfig* dataset, Resolve(spec));
  const std::string context = "dataset '" + spec.dataset + "'";
  const auto deadline = config_.pull_timeout_ms > 0
                            ? Clock::now() + std::chrono::milliseconds(config_.pull_timeout_ms)
                            : Clock::time_point::max();
  const Interrupt interrupt = [&sink, deadline]() -> Status {
    if (sink.cancelled()) return Status::Cancelled("the pull was cancelled");
    if (Clock::now() >= deadline)
      return Status::DeadlineExceeded("the pull exceeded pull_timeout_ms");
    return Status::Ok();
  };
  AIRLOCK_RETURN_IF_ERROR(interrupt());

  auto connection = PgConnection::Connect(config_, host_);
  if (!connection.ok()) return connection.status().WithContext(context);
  auto columns = Columns(**connection, *dataset, interrupt);
  if (!columns.ok()) return columns.status().WithContext(context);
  auto query = BuildPullQuery(*dataset, *columns, spec.scope);
  if (!query.ok()) return query.status().WithContext(context);
  auto key = PrimaryKey(**connection, *dataset, config_, host_, interrupt);
  if (!key.ok()) return key.status().WithContext(context);
  uint64_t rows = 0;
  Status streamed =
      Stream(**connection, *query, DeliveredKey(*key, *query, spec.scope), sink, interrupt, &rows);
  if (!streamed.ok()) return streamed.WithContext(context);
  host_.Info("pulled " + std::to_string(rows) + " row(s) of " + context);
  return Status::Ok();
}

Status PostgresConnector::Stream(PgConnection& connection, const PullQuery& query,
                                 const std::vector<std::string>& key, sdk::BatchSink& sink,
                                 const Interrupt& interrupt, uint64_t* rows) const {
  // A snapshot for the whole pull; READ ONLY also stops a named query that
  // would write.
  AIRLOCK_RETURN_IF_ERROR(
      connection.Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}, false, interrupt)
          .status());
  if (config_.statement_timeout_ms > 0) {
    AIRLOCK_RETURN_IF_ERROR(
        connection
            .Run("SET LOCAL statement_timeout = " + std::to_string(config_.statement_timeout_ms),
                 {}, false, interrupt)
            .status());
  }
  AIRLOCK_RETURN_IF_ERROR(
      connection
          .Run(std::string("DECLARE ") + kCursor + " NO SCROLL CURSOR FOR " + query.select,
               query.params, false, interrupt)
          .status());
  arrow::RecordBatchBuilder builder(query.fields, static_cast<size_t>(config_.batch_rows));
  arrow::OwnedSchema schema = builder.MakeSchema();
  if (!key.empty()) {
    AIRLOCK_RETURN_IF_ERROR(
        arrow::SetSchemaMetadata(schema, {{sdk::kKeyColumnsMetadata, sdk::EncodeKeyColumns(key)}}));
  }
  AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(std::move(schema)));

  const std::string fetch =
      "FETCH FORWARD " + std::to_string(config_.batch_rows) + " FROM " + kCursor;
  const int batch_rows = static_cast<int>(config_.batch_rows);
  uint64_t bytes = 0;
  // One FETCH is always in flight while the previous batch is converted, so
  // the server produces rows while the connector builds Arrow arrays.
  AIRLOCK_RETURN_IF_ERROR(connection.Send(fetch, {}, true));
  for (;;) {
    AIRLOCK_ASSIGN_OR_RETURN(PgResult result, connection.Await(interrupt));
    const int n = PQntuples(result.get());
    const bool more = n == batch_rows;
    if (more) AIRLOCK_RETURN_IF_ERROR(connection.Send(fetch, {}, true));
    if (n > 0) {
      AIRLOCK_RETURN_IF_ERROR(AppendRows(result.get(), query.decode, builder));
      result.reset();
      bytes += builder.bytes();
      *rows += static_cast<uint64_t>(n);
      AIRLOCK_RETURN_IF_ERROR(sink.SendBatch(builder.Finish()));
      sink.Progress(*rows, bytes);
    }
    if (!more) break;
    AIRLOCK_RETURN_IF_ERROR(interrupt());
  }
  return connection.Run("COMMIT", {}, false, interrupt).status();
}

}  // namespace airlock::connectors::postgres
