// What the database says about its collections, for describe: their names
// and types, and how many documents a collection holds.
//
// The count is the server's `count` command without a query
// (estimatedDocumentCount): it reads the collection's metadata, not its
// documents, so it is cheap whatever the size. It is exact on a standalone
// or replica set in normal operation; MongoDB documents it may drift after an
// unclean shutdown and, on a sharded cluster, count orphaned documents or
// ones in a chunk migration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "mongo_session.h"

namespace airlock::connectors::mongodb {

// Bound on one count (the command's maxTimeMS).
inline constexpr int64_t kCountMaxTimeMs = 5000;

struct CollectionInfo {
  std::string name;
  std::string type;  // "collection", "view", "timeseries"
};

// Every collection of the session's database, in the server's order.
// Errors as MongoSession::Classify.
Result<std::vector<CollectionInfo>> ListCollections(const MongoSession& session);

// The document count of `collection` from its metadata. Errors as
// MongoSession::Classify (MaxTimeMSExpired is DeadlineExceeded).
Result<int64_t> EstimatedCount(const MongoSession& session, const std::string& collection);

}  // namespace airlock::connectors::mongodb
