// The embedded state store backend: one SQLite file on local disk.
//
// Durability: WAL journal with synchronous=FULL, so a committed transaction
// survives power loss. Group commit: Save hands its (already serialized) row
// to a single writer thread, which takes every queued Save, applies them in
// ONE transaction in queue order (a version conflict fails that Save alone;
// the others commit), commits once and then answers every caller. A Save's
// outbox messages are inserted in that transaction right after its row, and
// only when the row was written. The outbox's other writes (enqueue, claim,
// settle, purge) queue to the same writer and join the same groups, so the
// file keeps one writer and a claim and its settle never interleave. Reads run
// on a small pool of separate read-only connections, concurrently with the
// writer (WAL readers never block it). The writer checkpoints the log
// between commits when no Save is waiting, never inside a commit.
//
// Schema: forward migrations in code (schema_migrations.h), applied by Open
// and recorded in table schema_version; version 1 is table requests with
// columns id, state (snake_case name), version, requester_subject,
// created_at_us, updated_at_us, deadline_us, reason and the JSON documents
// requester, request, decision, approvals, enclave, tunnel; indexes serve
// the newest-first listing by all / state / requester. Version 2 is table
// notification_outbox (id, notifier, request_id, payload, status,
// created_at_us, next_attempt_at_us, attempts, last_error, settled_at_us,
// claimed_by, claimed_until_us), indexed for the claim (notifier, status,
// due order) and for the purge of settled messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "airlock/cpp/status.hpp"
#include "kernel/state/schema_migrations.h"
#include "kernel/state/state_store.h"

namespace airlock {

struct SqliteStateStoreOptions {
  // Read-only connections shared by Load/List/LoadActive (at least 1).
  size_t read_connections = 2;
  // Saves waiting for the writer beyond this are refused (ResourceExhausted).
  size_t max_pending = 1u << 16;
  // How long a connection waits for a lock held by another process.
  int busy_timeout_ms = 5000;
  // Largest record accepted, counting all serialized JSON documents.
  size_t max_record_bytes = 1u << 20;
  // Log pages after which the writer checkpoints the WAL into the database
  // once no Save is waiting (at four times this, even if some are).
  int checkpoint_pages = 1000;
  // Requests kept in memory as text for LoadText (RequestTextCache); 0
  // turns the cache off.
  size_t text_cache_entries = 8192;
};

class SqliteStateStore : public StateStore {
 public:
  // Opens or creates the database at `path` (file mode 0600), switches it to
  // WAL, applies the schema migrations this binary has and the file lacks
  // and starts the writer thread. The
  // store is the file's only writer: it holds an exclusive lock on
  // "<path>.lock" until it is destroyed. FailedPrecondition when the file
  // holds a newer schema version or another store has it open.
  static Result<std::unique_ptr<SqliteStateStore>> Open(const std::string& path,
                                                        SqliteStateStoreOptions options = {});

  // Transactions committed by the writer since Open (each covers a group of Saves).
  virtual uint64_t commit_count() const = 0;
  // Saves the writer has processed since Open, successful or not.
  virtual uint64_t save_count() const = 0;
  // WAL checkpoints the writer has completed since Open.
  virtual uint64_t checkpoint_count() const = 0;
  // The schema version Open found and the one it left.
  virtual SchemaMigrationReport migration() const = 0;
};

// The same store behind the abstract interface.
Result<std::unique_ptr<StateStore>> OpenSqliteStateStore(const std::string& path,
                                                         SqliteStateStoreOptions options = {});

}  // namespace airlock
