// The state store the configuration chooses (state.backend), for the
// composition root and the `airlockd state` commands.
//
// SQLite: <state_dir>/state.db, migrated on open (one process owns the file,
// so the kernel may change its schema as it starts). PostgreSQL: the
// connection string is resolved from state.dsn_secret here, the kernel's own
// operational secret, and never logged or put in an error; the schema is
// changed only by MigrateConfiguredStateStore (`airlockd state migrate`),
// never by a starting kernel, because several replicas of possibly different
// releases share the database during a rolling upgrade, and the role that
// may change the schema need not be the one the kernel runs with.
#pragma once

#include <memory>
#include <string>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"
#include "kernel/core/config.h"
#include "kernel/state/postgres_state_store.h"
#include "kernel/state/schema_migrations.h"
#include "kernel/state/state_store.h"

namespace airlock {

struct OpenedStateStore {
  std::unique_ptr<StateStore> store;
  // "sqlite <path>" or "postgres user@host:port/db": for logs and messages.
  std::string description;
};

Result<OpenedStateStore> OpenConfiguredStateStore(const KernelConfig& config);

// The PostgreSQL database state.backend "postgres" names (state.dsn_secret
// resolved, state.tls applied): for the state store and for the audit chain
// that shares its database.
struct PostgresConnection {
  Secret dsn;
  PostgresTlsSettings tls;
  int connect_timeout_seconds = 5;
};
Result<PostgresConnection> ConfiguredPostgresConnection(const KernelConfig& config);

// What opening the configured store would refuse before connecting (the
// connection string reference resolves and parses, the TLS files are
// readable), opening and connecting to nothing: `airlockd check-config`.
// The store as messages name it.
Result<std::string> CheckConfiguredStateStore(const KernelConfig& config);

// Applies the schema migrations the configured store lacks.
Result<SchemaMigrationReport> MigrateConfiguredStateStore(const KernelConfig& config);

}  // namespace airlock
