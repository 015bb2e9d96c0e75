// The state store backend for several kernel replicas: one PostgreSQL
// database (libpqxx), shared by every replica.
//
// Versions are decided by the database, so replicas racing on one request
// get exactly one outcome: an insert is INSERT ... ON CONFLICT DO NOTHING,
// an update is UPDATE ... WHERE id = $id AND version = $version - 1; the
// loser of a race waits on the winner's row lock, finds the row changed and
// gets Conflict, exactly as with the SQLite backend.
//
// Group commit: Save hands its serialized row to one writer thread, which
// sends every queued Save (up to max_batch) as ONE statement: a call of the
// schema's function airlock_save_requests(jsonb) that applies them in queue
// order (by id, then queue order, so that replicas lock rows in one order)
// inside the statement's own transaction. One round trip, one commit
// (synchronous_commit as the server has it; keep it on), and every caller
// is answered only after it. A conflict fails that Save alone.
//
// In-doubt commits: each Save carries a random write token stored with the
// row. When the connection breaks while a group is in flight, the writer
// reconnects and sends the group again; a Save whose first attempt did
// commit finds its own token at its version and succeeds instead of
// conflicting with itself. Deadlocks and serialization failures are retried.
//
// Connections: the writer's and a small pool for reads, each opened on
// first use. A broken connection is dropped and the call answers
// Unavailable with the reason (never the connection string or password);
// the next call connects again, so a PostgreSQL restart needs no kernel
// restart. A read that finds its pooled connection broken tries once more
// on a fresh one. (libpqxx 6.4 leaks the result of a statement whose
// connection broke under it, a few hundred bytes per such break.)
//
// Outbox: a Save's messages ride in its entry of the group's statement, and
// airlock_save_requests inserts them right after the row, only when the row
// was written: record and messages commit together (or neither does). The
// outbox's other calls are single statements on the pooled connections. A
// claim locks the rows it takes with FOR UPDATE SKIP LOCKED, so replicas
// claiming at once never get the same message; a settle applies only while
// the settler is still the claimer recorded in the row.
//
// No text cache: other replicas write the same rows, so LoadText always
// reads the database (one round trip, no JSON parsing).
//
// Schema: forward migrations in code (schema_migrations.h) recorded in table
// schema_version. Open never migrates: it refuses a database whose schema
// is not exactly this binary's (older: run Migrate, `airlockd state
// migrate`; newer: written by a newer kernel). Migrate serialises
// concurrent migrators on an advisory lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"
#include "kernel/state/schema_migrations.h"
#include "kernel/state/state_store.h"

namespace airlock {

// TLS to the server, applied over what the connection string says.
struct PostgresTlsSettings {
  // "" (the connection string decides), "require", "verify-ca" or "verify-full".
  std::string mode;
  std::string ca_file;    // sslrootcert; required by verify-ca and verify-full
  std::string cert_file;  // client certificate (sslcert), with key_file
  std::string key_file;   // sslkey
};

struct PostgresStateStoreOptions {
  PostgresTlsSettings tls;
  int connect_timeout_seconds = 5;
  // Connections shared by Load/LoadText/List/LoadActive (at least 1).
  size_t read_connections = 4;
  // Saves waiting for the writer beyond this are refused (ResourceExhausted).
  size_t max_pending = 1u << 16;
  // Most Saves, and most bytes of serialized Saves, sent in one statement
  // (a single larger Save still goes, alone).
  size_t max_batch = 1024;
  size_t max_batch_bytes = 16u << 20;
  // Largest record accepted, counting all serialized JSON documents.
  size_t max_record_bytes = 1u << 20;
};

class PostgresStateStore : public StateStore {
 public:
  // Connects to the database named by `dsn` (a libpq connection string or
  // URI), checks its schema and starts the writer. InvalidArgument for a
  // malformed connection string or TLS settings, Unavailable when the
  // server cannot be reached, FailedPrecondition when the schema is missing,
  // older or newer than this binary's.
  static Result<std::unique_ptr<PostgresStateStore>> Open(const Secret& dsn,
                                                          PostgresStateStoreOptions options = {});

  // What Open checks before it connects: the connection string parses and
  // the TLS files are readable. Connects to nothing (`airlockd
  // check-config`); the database as errors name it (user@host:port/dbname).
  static Result<std::string> CheckTarget(const Secret& dsn,
                                         const PostgresStateStoreOptions& options = {});

  // Applies the migrations the database lacks, each in a transaction with
  // its schema_version row. FailedPrecondition when the schema is newer.
  static Result<SchemaMigrationReport> Migrate(const Secret& dsn,
                                               const PostgresStateStoreOptions& options = {});

  // Groups the writer committed since Open (one transaction each).
  virtual uint64_t commit_count() const = 0;
  // Saves the writer has processed since Open, successful or not.
  virtual uint64_t save_count() const = 0;
  // Statements the writer sent (retries included).
  virtual uint64_t round_trip_count() const = 0;
  // The database as errors name it: user@host:port/dbname.
  virtual const std::string& target() const = 0;
};

// The schema version this binary writes.
int PostgresStateSchemaVersion();

}  // namespace airlock
