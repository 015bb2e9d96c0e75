#include "mongodb.h"

#include <algorithm>

#include "airlock/cpp/scope.hpp"
#include "collections.h"
#include "cursor_prefetch.h"
#include "query_builder.h"
#include "row_writer.h"

namespace airlock::connectors::mongodb {
namespace {

// Batches are also flushed at this size, far below Arrow's 2 GiB offsets.
constexpr size_t kMaxBatchBytes = 64u << 20;
// Documents read ahead of the conversion are cut into chunks of about this
// size (a server reply is at most 16 MiB too); two chunks may wait.
constexpr size_t kPrefetchChunkBytes = 16u << 20;
constexpr size_t kPrefetchChunks = 2;

const char* CatalogTypeName(Kind kind) {
  switch (ArrowTypeOf(kind)) {
    case arrow::Type::kInt32:
      return "int32";
    case arrow::Type::kInt64:
      return "int64";
    case arrow::Type::kFloat64:
      return "float64";
    case arrow::Type::kBool:
      return "bool";
    case arrow::Type::kTimestampMicros:
      return "timestamp";
    case arrow::Type::kBinary:
      return "binary";
    default:
      return "utf8";
  }
}

Cursor Aggregate(const MongoSession& session, const std::string& collection, const bson_t* pipeline,
                 int64_t batch_size) {
  Collection coll(mongoc_client_get_collection(session.client(), session.database().c_str(),
                                               collection.c_str()));
  BsonPtr opts(bson_new());
  bson_append_int64(opts.get(), "batchSize", -1, batch_size);
  return Cursor(
      mongoc_collection_aggregate(coll.get(), MONGOC_QUERY_NONE, pipeline, opts.get(), nullptr));
}

std::vector<SourceColumn> DeclaredColumns(const DatasetConfig& dataset) {
  std::vector<SourceColumn> columns;
  for (const auto& c : dataset.columns) columns.push_back({c.name, c.kind});
  return columns;
}

}  // namespace

Result<std::unique_ptr<MongoConnector>> MongoConnector::Create(const Json& config,
                                                               const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(MongoConfig parsed, ParseConfig(config));
  if (!parsed.uri.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string uri_database, ValidatePlainUri(parsed.uri));
    if (parsed.database.empty()) parsed.database = uri_database;
    if (parsed.database.empty()) {
      return Status::InvalidArgument("no database: set database or name one in the uri");
    }
  }
  for (const auto& d : parsed.datasets) {
    auto pipeline = ParsePipeline(d.pipeline_json);
    if (!pipeline.ok()) return pipeline.status().WithContext("dataset '" + d.name + "'");
  }
  return std::unique_ptr<MongoConnector>(new MongoConnector(std::move(parsed), host));
}

Result<DatasetConfig> MongoConnector::Resolve(const PullSpec& spec) const {
  if (config_.datasets_configured) {
    for (const auto& d : config_.datasets) {
      if (d.name == spec.dataset) return d;  // never redirected by spec.object
    }
    return Status::NotFound("dataset '" + spec.dataset + "' is not configured");
  }
  DatasetConfig d;
  d.name = spec.dataset;
  d.collection = spec.object.empty() ? spec.dataset : spec.object;
  d.nested = config_.nested;
  if (!SafeName(d.collection) || d.collection.starts_with("system.")) {
    return Status::InvalidArgument("'" + d.collection + "' is not a collection name");
  }
  return d;
}

Status MongoConnector::CheckCollection(const MongoSession& session,
                                       const std::string& collection) const {
  Database db(mongoc_client_get_database(session.client(), session.database().c_str()));
  BsonPtr opts(bson_new());
  bson_t filter;
  bson_append_document_begin(opts.get(), "filter", -1, &filter);
  bson_append_utf8(&filter, "name", -1, collection.c_str(), static_cast<int>(collection.size()));
  bson_append_document_end(opts.get(), &filter);
  bson_append_bool(opts.get(), "nameOnly", -1, true);
  Cursor cursor(mongoc_database_find_collections_with_opts(db.get(), opts.get()));
  const bson_t* doc = nullptr;
  const bool found = mongoc_cursor_next(cursor.get(), &doc);
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) {
    return session.Classify(error, "listing collections");
  }
  if (!found) {
    return Status::NotFound("collection '" + collection + "' does not exist in database '" +
                            session.database() + "'");
  }
  return Status::Ok();
}

Result<std::vector<SourceColumn>> MongoConnector::Columns(const MongoSession& session,
                                                          const DatasetConfig& dataset) const {
  if (!dataset.columns.empty()) return DeclaredColumns(dataset);
  AIRLOCK_ASSIGN_OR_RETURN(BsonPtr pipeline, ParsePipeline(dataset.pipeline_json));
  const std::string limit_key = std::to_string(bson_count_keys(pipeline.get()));
  bson_t stage;
  bson_append_document_begin(pipeline.get(), limit_key.c_str(), -1, &stage);
  bson_append_int64(&stage, "$limit", -1, config_.infer_documents);
  bson_append_document_end(pipeline.get(), &stage);
  Cursor cursor = Aggregate(session, dataset.collection, pipeline.get(),
                            std::min<int64_t>(config_.infer_documents, config_.batch_rows));
  SchemaInferer inferer(dataset.nested);
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor.get(), &doc)) inferer.Add(doc);
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) {
    return session.Classify(error, "sampling documents");
  }
  std::vector<std::string> skipped;
  AIRLOCK_ASSIGN_OR_RETURN(auto columns, inferer.Finish(&skipped));
  for (const auto& name : skipped) {
    host_.Warn("dataset '" + dataset.name + "': field '" + name +
               "' cannot be queried safely and is not a column");
  }
  return columns;
}

int64_t MongoConnector::Rows(const MongoSession* session,
                             const Result<std::vector<CollectionInfo>>& collections,
                             const DatasetConfig& dataset) const {
  if (session == nullptr || !collections.ok()) return -1;
  // A pipeline's output can only be counted by running it.
  auto pipeline = ParsePipeline(dataset.pipeline_json);
  if (!pipeline.ok() || bson_count_keys(pipeline->get()) != 0) return -1;
  // Plain collections only: counting a view runs its pipeline, a time-series
  // collection unpacks its buckets, and a collection that is not listed does
  // not exist (the server would count 0, as if it were empty).
  const auto found = std::find_if(collections->begin(), collections->end(),
                                  [&](const auto& c) { return c.name == dataset.collection; });
  if (found == collections->end() || found->type != "collection") return -1;
  auto n = EstimatedCount(*session, dataset.collection);
  if (!n.ok()) {
    // A role that may not read the collection is just not told.
    if (n.status().code() != StatusCode::kPermissionDenied) {
      host_.Warn("dataset '" + dataset.name + "': rows unknown: " + n.status().message());
    }
    return -1;
  }
  return *n;
}

Result<Catalog> MongoConnector::Describe() {
  std::vector<DatasetConfig> datasets = config_.datasets;
  std::unique_ptr<MongoSession> session;
  Status session_status = Status::Ok();
  auto open = [&]() -> Status {
    if (!session && session_status.ok()) {
      auto opened = MongoSession::Open(config_, host_);
      if (opened.ok()) {
        session = std::move(opened).value();
      } else {
        session_status = opened.status();
      }
    }
    return session_status;
  };
  // Listed once: the datasets when none are configured, and which datasets
  // are plain collections whose documents can be counted.
  Result<std::vector<CollectionInfo>> collections = Status::Unavailable("not listed");
  if (!config_.datasets_configured) {
    AIRLOCK_RETURN_IF_ERROR(open());
    collections = ListCollections(*session);
    if (!collections.ok()) return collections.status();
    for (const auto& c : *collections) {
      DatasetConfig d;
      d.name = d.collection = c.name;
      d.nested = config_.nested;
      if (SafeName(d.collection) && !d.collection.starts_with("system.")) {
        datasets.push_back(std::move(d));
      }
    }
  } else {
    const Status opened = open();
    collections =
        opened.ok() ? ListCollections(*session) : Result<std::vector<CollectionInfo>>(opened);
    if (!collections.ok()) {
      host_.Warn("describe: document counts unknown: " + collections.status().message());
    }
  }
  Catalog catalog;
  for (const auto& dataset : datasets) {
    DatasetInfo info;
    info.name = dataset.name;
    info.object = dataset.collection;
    info.description = dataset.description;
    info.tags = dataset.tags;
    Result<std::vector<SourceColumn>> columns = DeclaredColumns(dataset);
    if (dataset.columns.empty()) {
      const Status opened = open();
      columns =
          opened.ok() ? Columns(*session, dataset) : Result<std::vector<SourceColumn>>(opened);
    }
    if (!columns.ok()) {
      if (!config_.datasets_configured)
        return columns.status().WithContext("dataset '" + dataset.name + "'");
      host_.Warn("dataset '" + dataset.name + "': columns unknown: " + columns.status().message());
    } else {
      for (const auto& c : *columns) info.columns.push_back({c.name, CatalogTypeName(c.kind)});
    }
    info.rows = Rows(session.get(), collections, dataset);
    catalog.datasets.push_back(std::move(info));
  }
  return catalog;
}

Status MongoConnector::Pull(const PullSpec& spec, sdk::BatchSink& sink) {
  const std::string context = "dataset '" + spec.dataset + "'";
  auto dataset = Resolve(spec);
  if (!dataset.ok()) return dataset.status();
  if (sink.cancelled()) return Status::Cancelled("pull cancelled");
  // Secrets are resolved here and released when the session closes, at the
  // end of this call.
  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<MongoSession> session,
                           MongoSession::Open(config_, host_));
  Status status = CheckCollection(*session, dataset->collection);
  if (!status.ok()) return status.WithContext(context);
  auto columns = Columns(*session, *dataset);
  if (!columns.ok()) return columns.status().WithContext(context);
  uint64_t rows = 0;
  status = Stream(*session, *dataset, *columns, spec.scope, sink, &rows);
  if (!status.ok()) return status.WithContext(context);
  host_.Info("pulled " + std::to_string(rows) + " document(s) of " + context);
  return Status::Ok();
}

Status MongoConnector::Stream(const MongoSession& session, const DatasetConfig& dataset,
                              const std::vector<SourceColumn>& columns, const DatasetScope& scope,
                              sdk::BatchSink& sink, uint64_t* rows) const {
  std::vector<arrow::Field> fields;
  fields.reserve(columns.size());
  for (const auto& c : columns) fields.push_back(FieldOf(c.name, c.kind));
  AIRLOCK_ASSIGN_OR_RETURN(scope::ScopePlan plan, scope::ScopePlan::Make(fields, scope));
  AIRLOCK_ASSIGN_OR_RETURN(BsonPtr pipeline,
                           BuildPullPipeline(dataset.pipeline_json, columns, plan, scope));
  const size_t batch_rows = static_cast<size_t>(config_.batch_rows);
  RowWriter writer(columns, plan, dataset.nested, batch_rows);
  AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(writer.MakeSchema()));

  Cursor cursor = Aggregate(session, dataset.collection, pipeline.get(), config_.batch_rows);
  uint64_t sent = 0, bytes_sent = 0;
  auto flush = [&]() -> Status {
    // Cancellation is checked before every batch; returning destroys the
    // cursor, which kills it on the server.
    if (sink.cancelled()) return Status::Cancelled("pull cancelled");
    const uint64_t n = writer.rows();
    const uint64_t b = writer.bytes();
    AIRLOCK_RETURN_IF_ERROR(sink.SendBatch(writer.Finish()));
    sent += n;
    bytes_sent += b;
    sink.Progress(sent, bytes_sent);
    return Status::Ok();
  };
  // Declared after the cursor: stops reading before the cursor is destroyed.
  CursorPrefetcher prefetcher(cursor.get(), batch_rows, kPrefetchChunkBytes, kPrefetchChunks);
  DocumentChunk chunk;
  while (prefetcher.Next(&chunk)) {
    for (size_t i = 0; i < chunk.size(); ++i) {
      bson_t doc;
      if (!chunk.View(i, &doc)) return Status::Internal("the server sent malformed BSON");
      AIRLOCK_RETURN_IF_ERROR(writer.Append(&doc));
      if (writer.rows() >= batch_rows || writer.bytes() >= kMaxBatchBytes) {
        AIRLOCK_RETURN_IF_ERROR(flush());
      }
    }
  }
  bson_error_t error;
  if (prefetcher.error(&error)) return session.Classify(error, "reading");
  if (writer.rows() > 0) {
    AIRLOCK_RETURN_IF_ERROR(flush());
  } else if (sink.cancelled()) {
    return Status::Cancelled("pull cancelled");
  }
  *rows = sent;
  return Status::Ok();
}

}  // namespace airlock::connectors::mongodb
