// Versioned schemas of the state store backends. Each backend keeps its
// schema as an ordered list of forward migrations in code (version 1, 2, ...,
// each applied once, in order, inside one transaction with the row that
// records it in the backend's schema_version table). A database whose
// recorded version is newer than the last migration this binary knows was
// written by a newer kernel and is refused, never touched.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock {

struct SchemaMigration {
  int version = 0;          // 1, 2, ... with no gaps
  const char* description;  // recorded where the backend keeps descriptions
  const char* sql;          // one or more statements
};

// What a migration run found and did.
struct SchemaMigrationReport {
  std::string store;     // the database as messages name it (no secrets)
  int from_version = 0;  // 0: the database had no schema yet
  int to_version = 0;
};

// The last version in `migrations`.
int LatestSchemaVersion(std::span<const SchemaMigration> migrations);

// The migrations after `current`, in order. FailedPrecondition naming
// `store` and both versions when `current` is newer than this binary's
// latest (the binary must not write a schema it does not know).
Result<std::vector<const SchemaMigration*>> PendingMigrations(
    std::span<const SchemaMigration> migrations, int current, std::string_view store);

// FailedPrecondition for a schema this binary cannot use as it is: newer
// than the binary, or (for backends migrated by an operator) older.
Status SchemaNewerThanBinary(std::string_view store, int current, int latest);

}  // namespace airlock
