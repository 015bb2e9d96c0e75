#include "tests/kernel/state/state_backends.h"

#include <atomic>
#include <mutex>
#include <stdexcept>

namespace airlock::test {

PostgresStateStoreOptions PgStateOptions(const PgCluster& cluster) {
  PostgresStateStoreOptions options;
  options.tls.mode = "verify-full";
  options.tls.ca_file = cluster.ca_file();
  options.read_connections = 2;
  return options;
}

PgStateDatabase CreatePgStateDatabase(PgCluster& cluster, bool migrate) {
  static std::mutex mu;
  static std::atomic<int> counter{0};
  {
    std::lock_guard lock(mu);
    const auto exists =
        cluster.Query(std::string("SELECT 1 FROM pg_roles WHERE rolname = '") + kStateRole + "'");
    if (exists.empty()) {
      cluster.Exec(std::string("CREATE ROLE ") + kStateRole + " LOGIN PASSWORD '" + kStatePassword +
                   "'");
    }
  }
  PgStateDatabase db;
  db.name = "state_" + std::to_string(++counter);
  cluster.Exec("CREATE DATABASE " + db.name + " OWNER " + kStateRole);
  db.dsn = "host=127.0.0.1 port=" + std::to_string(cluster.port()) + " dbname=" + db.name +
           " user=" + kStateRole + " password=" + kStatePassword;
  if (migrate) {
    auto migrated =
        PostgresStateStore::Migrate(Secret(std::string(db.dsn)), PgStateOptions(cluster));
    if (!migrated.ok()) {
      throw std::runtime_error("state schema migration failed: " + migrated.status().ToString());
    }
  }
  return db;
}

std::unique_ptr<StateStore> SqliteBackend::Open() {
  auto store = SqliteStateStore::Open(dir_.File("state.db"));
  if (!store.ok()) throw std::runtime_error(store.status().ToString());
  return std::move(store).value();
}

uint64_t SqliteBackend::CommitCount(StateStore& store) {
  return static_cast<SqliteStateStore&>(store).commit_count();
}

uint64_t SqliteBackend::SaveCount(StateStore& store) {
  return static_cast<SqliteStateStore&>(store).save_count();
}

PostgresBackend::PostgresBackend() : database_(CreatePgStateDatabase(PgCluster::Shared())) {}

std::unique_ptr<StateStore> PostgresBackend::Open() {
  auto store = PostgresStateStore::Open(Secret(std::string(database_.dsn)),
                                        PgStateOptions(PgCluster::Shared()));
  if (!store.ok()) throw std::runtime_error(store.status().ToString());
  return std::move(store).value();
}

uint64_t PostgresBackend::CommitCount(StateStore& store) {
  return static_cast<PostgresStateStore&>(store).commit_count();
}

uint64_t PostgresBackend::SaveCount(StateStore& store) {
  return static_cast<PostgresStateStore&>(store).save_count();
}

}  // namespace airlock::test

// libpqxx 6.4 leaks the PGresult of a statement whose connection broke while
// it ran: make_result asks the dead connection for its client encoding and
// throws before it owns the result (fixed in libpqxx 7). The suites here break
// connections on purpose (a server restart, pg_terminate_backend), so the
// leak checker is told about that library path. The audit chain's statements
// (pqxx::transaction_base::exec) leak the same way, and their frames in the
// library are not symbolized: for those the library itself is named. Only the
// PostgreSQL suites link this file.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:pqxx::connection_base::exec_prepared\nleak:libpqxx-6.4.so\n";
}
