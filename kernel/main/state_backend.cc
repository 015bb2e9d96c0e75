#include "kernel/main/state_backend.h"

#include <filesystem>

#include "kernel/plugin_host/secret_reference.h"
#include "kernel/state/postgres_state_store.h"
#include "kernel/state/sqlite_state_store.h"

namespace airlock {
namespace {

PostgresStateStoreOptions PostgresOptions(const StateConfig& state) {
  PostgresStateStoreOptions options;
  options.tls.mode = state.tls_mode;
  options.tls.ca_file = state.tls_ca_file;
  options.tls.cert_file = state.tls_cert_file;
  options.tls.key_file = state.tls_key_file;
  options.read_connections = static_cast<size_t>(state.read_connections);
  options.connect_timeout_seconds = static_cast<int>(state.connect_timeout_seconds);
  return options;
}

Result<Secret> ResolveDsn(const StateConfig& state) {
  auto dsn = plugin_host::ResolveSecretReference(state.dsn_secret);
  if (!dsn.ok()) return dsn.status().WithContext("state.dsn_secret");
  return dsn;
}

void CreateParentDirectory(const std::string& path) {
  std::error_code ignored;  // opening the store reports what is wrong
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ignored);
}

}  // namespace

Result<OpenedStateStore> OpenConfiguredStateStore(const KernelConfig& config) {
  OpenedStateStore opened;
  if (config.state.backend == StateBackend::kSqlite) {
    CreateParentDirectory(config.state_path);
    AIRLOCK_ASSIGN_OR_RETURN(opened.store, OpenSqliteStateStore(config.state_path));
    opened.description = "sqlite " + config.state_path;
    return opened;
  }
  AIRLOCK_ASSIGN_OR_RETURN(Secret dsn, ResolveDsn(config.state));
  AIRLOCK_ASSIGN_OR_RETURN(auto store,
                           PostgresStateStore::Open(dsn, PostgresOptions(config.state)));
  opened.description = "postgres " + store->target();
  opened.store = std::move(store);
  return opened;
}

Result<PostgresConnection> ConfiguredPostgresConnection(const KernelConfig& config) {
  if (config.state.backend != StateBackend::kPostgres) {
    return Status::FailedPrecondition("state.backend is not \"postgres\"");
  }
  PostgresConnection connection;
  AIRLOCK_ASSIGN_OR_RETURN(connection.dsn, ResolveDsn(config.state));
  const PostgresStateStoreOptions options = PostgresOptions(config.state);
  connection.tls = options.tls;
  connection.connect_timeout_seconds = options.connect_timeout_seconds;
  return connection;
}

Result<std::string> CheckConfiguredStateStore(const KernelConfig& config) {
  if (config.state.backend == StateBackend::kSqlite) return "sqlite " + config.state_path;
  AIRLOCK_ASSIGN_OR_RETURN(Secret dsn, ResolveDsn(config.state));
  AIRLOCK_ASSIGN_OR_RETURN(std::string target,
                           PostgresStateStore::CheckTarget(dsn, PostgresOptions(config.state)));
  return "postgres " + target;
}

Result<SchemaMigrationReport> MigrateConfiguredStateStore(const KernelConfig& config) {
  if (config.state.backend == StateBackend::kSqlite) {
    CreateParentDirectory(config.state_path);
    AIRLOCK_ASSIGN_OR_RETURN(auto store, SqliteStateStore::Open(config.state_path));
    SchemaMigrationReport report = store->migration();
    report.store = "sqlite " + config.state_path;
    return report;
  }
  AIRLOCK_ASSIGN_OR_RETURN(Secret dsn, ResolveDsn(config.state));
  return PostgresStateStore::Migrate(dsn, PostgresOptions(config.state));
}

}  // namespace airlock
