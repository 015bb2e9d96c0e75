#include "kernel/state/schema_migrations.h"

namespace airlock {

int LatestSchemaVersion(std::span<const SchemaMigration> migrations) {
  return migrations.empty() ? 0 : migrations.back().version;
}

Status SchemaNewerThanBinary(std::string_view store, int current, int latest) {
  return Status::FailedPrecondition(
      std::string(store) + ": schema version " + std::to_string(current) +
      " is newer than this kernel supports (" + std::to_string(latest) +
      "); it was written by a newer airlockd: run that version, or restore a backup made "
      "before its upgrade");
}

Result<std::vector<const SchemaMigration*>> PendingMigrations(
    std::span<const SchemaMigration> migrations, int current, std::string_view store) {
  const int latest = LatestSchemaVersion(migrations);
  if (current > latest) return SchemaNewerThanBinary(store, current, latest);
  std::vector<const SchemaMigration*> pending;
  for (const SchemaMigration& migration : migrations) {
    if (migration.version > current) pending.push_back(&migration);
  }
  return pending;
}

}  // namespace airlock
