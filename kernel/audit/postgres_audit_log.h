// The audit chain in PostgreSQL: one hash chain that every kernel replica
// sharing the state database appends to (tables audit_records and
// audit_head, created by `airlockd state migrate`). Records are the same
// JSON lines as the file backend's (audit_chain.h), so an export verifies
// with the same verifier and the same signed checkpoints.
//
// Order is fixed by the database: a group commit locks the single
// audit_head row (SELECT ... FOR UPDATE), chains its records on the head it
// finds, inserts them and moves the head, and commits. Concurrent groups
// from other replicas wait on the row lock, so seqs follow commit order and
// never fork. Two round trips per group: "BEGIN; SELECT head" and
// "INSERT; UPDATE head; COMMIT". Records take their "ts" from the database
// clock read under the lock, so timestamps follow seq across machines.
// Callers are answered only after COMMIT returned.
//
// In-doubt commits: when the connection breaks after COMMIT was sent, the
// writer reconnects and looks for its last record's hash at its seq: found,
// the group committed; not found, it did not, and the group is chained
// again on the current head (at most three attempts in all).
//
// Fail closed: a group that cannot be committed fails with Unavailable, and
// the log refuses every append (health() says why) until a probe, once a
// second, finds the database writable again: a PostgreSQL restart needs no
// kernel restart, and nothing is acknowledged that is not committed. A
// session idle inside a transaction for 10 s is ended by the server, so a
// paused writer cannot hold the head lock for long.
//
// Open checks what the file backend checks: the schema is this binary's,
// the head row agrees with the records (a head behind or ahead of them is
// records removed or added outside the kernel), every record chains (the
// whole chain is read once), and the records hold every trusted (seq,
// hash) point (AuditOptions::trusted_points).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_log.h"
#include "kernel/common/secret.h"
#include "kernel/state/postgres_state_store.h"

namespace airlock {

struct PostgresAuditOptions {
  PostgresTlsSettings tls;
  int connect_timeout_seconds = 5;
  // Used: trusted_points, max_record_bytes, max_pending.
  AuditOptions log;
  // Most records committed in one group.
  size_t max_batch = 1024;
};

// Connects to the database named by `dsn` and checks the chain (see above).
// InvalidArgument for a malformed connection string, Unavailable when the
// server cannot be reached, FailedPrecondition when the schema is not this
// binary's or the chain contradicts itself or a trusted point.
Result<std::unique_ptr<AuditLog>> OpenPostgresAuditLog(const Secret& dsn,
                                                       PostgresAuditOptions options);

struct AuditExport {
  std::string target;  // the database as messages name it
  AuditHead head;      // the head row of the exported snapshot
  uint64_t records = 0;
};

// Writes every record of the chain, in seq order, as JSON lines through
// `write` (each line with its newline), from one consistent snapshot.
// Stops at the first failed write and returns its status.
Result<AuditExport> ExportPostgresAudit(const Secret& dsn, const PostgresAuditOptions& options,
                                        const std::function<Status(std::string_view)>& write);

}  // namespace airlock
