#include "collections.h"

#include "query_builder.h"

namespace airlock::connectors::mongodb {

Result<std::vector<CollectionInfo>> ListCollections(const MongoSession& session) {
  Database db(mongoc_client_get_database(session.client(), session.database().c_str()));
  BsonPtr opts(bson_new());
  // Names and types only: no options, no index specs, no locks on the
  // collections.
  bson_append_bool(opts.get(), "nameOnly", -1, true);
  Cursor cursor(mongoc_database_find_collections_with_opts(db.get(), opts.get()));
  std::vector<CollectionInfo> collections;
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor.get(), &doc)) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "name") || !BSON_ITER_HOLDS_UTF8(&it)) continue;
    CollectionInfo info;
    info.name = bson_iter_utf8(&it, nullptr);
    if (bson_iter_init_find(&it, doc, "type") && BSON_ITER_HOLDS_UTF8(&it)) {
      info.type = bson_iter_utf8(&it, nullptr);
    }
    collections.push_back(std::move(info));
  }
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) {
    return session.Classify(error, "listing collections");
  }
  return collections;
}

Result<int64_t> EstimatedCount(const MongoSession& session, const std::string& collection) {
  Collection coll(mongoc_client_get_collection(session.client(), session.database().c_str(),
                                               collection.c_str()));
  BsonPtr opts(bson_new());
  bson_append_int64(opts.get(), "maxTimeMS", -1, kCountMaxTimeMs);
  bson_error_t error;
  const int64_t n =
      mongoc_collection_estimated_document_count(coll.get(), opts.get(), nullptr, nullptr, &error);
  if (n < 0) return session.Classify(error, "counting documents");
  return n;
}

}  // namespace airlock::connectors::mongodb
