// The state store backends as the shared test suite meets them: each backend
// type gives a store on storage of its own (a fresh SQLite file, a fresh
// PostgreSQL database on the test cluster), opened again on the same storage
// as often as a test asks (a restart, or a second replica), and its group
// commit counters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernel/state/postgres_state_store.h"
#include "kernel/state/sqlite_state_store.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/temp_dir.h"

namespace airlock::test {

// The role the PostgreSQL state store logs in as (over TCP, with a password).
inline constexpr char kStateRole[] = "airlock_state";
inline constexpr char kStatePassword[] = "state-Pw-9c1e77d4";

// A fresh database on `cluster` owned by kStateRole; with `migrate`, at this
// binary's schema. `dsn` is a keyword/value connection string with the
// password (127.0.0.1, TLS verify-full against the cluster's CA).
struct PgStateDatabase {
  std::string name;
  std::string dsn;
};
PgStateDatabase CreatePgStateDatabase(PgCluster& cluster, bool migrate = true);

// Options that verify the test cluster's server certificate.
PostgresStateStoreOptions PgStateOptions(const PgCluster& cluster);

class SqliteBackend {
 public:
  static constexpr const char* kName = "sqlite";
  // Only one store may have the file open at a time.
  static constexpr bool kSharedByReplicas = false;
  std::unique_ptr<StateStore> Open();
  static uint64_t CommitCount(StateStore& store);
  static uint64_t SaveCount(StateStore& store);

 private:
  TempDir dir_;
};

class PostgresBackend {
 public:
  static constexpr const char* kName = "postgres";
  static constexpr bool kSharedByReplicas = true;
  PostgresBackend();
  std::unique_ptr<StateStore> Open();
  static uint64_t CommitCount(StateStore& store);
  static uint64_t SaveCount(StateStore& store);
  const PgStateDatabase& database() const { return database_; }

 private:
  PgStateDatabase database_;
};

struct BackendNames {
  template <class Backend>
  static std::string GetName(int) {
    return Backend::kName;
  }
};

}  // namespace airlock::test
