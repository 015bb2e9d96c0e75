// The signed checkpoints of the audit chain in PostgreSQL: table
// audit_checkpoints (schema version 5), one row per published checkpoint,
// its line exactly as a checkpoints file would hold it. Every replica that
// signs publishes there, so a replica joining a chain others wrote finds
// their checkpoints and checks the chain against them at start (a key it
// trusts must have signed them: the same signing key on every replica, or
// the others' public keys in audit.checkpoints.previous_public_keys).
//
// Whoever can write the database can also delete rows of this table: the
// copies every replica ships to its log output and syslog are the ones out
// of that writer's reach (`airlockd audit verify --checkpoints FILE`).
//
// Thread-safety: Read may be called from any thread; a sink is used by the
// checkpointer's thread alone.
#pragma once

#include <memory>
#include <string>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_trail.h"
#include "kernel/audit/checkpoint_file.h"
#include "kernel/audit/checkpointer.h"
#include "kernel/audit/postgres_audit_log.h"
#include "kernel/common/secret.h"

namespace airlock {

class PostgresCheckpoints {
 public:
  // `replica` names the publisher in each row (informational).
  static Result<std::unique_ptr<PostgresCheckpoints>> Open(const Secret& dsn,
                                                           const PostgresAuditOptions& options,
                                                           std::string replica);
  ~PostgresCheckpoints();

  // Every checkpoint published, in publication order, as ReadCheckpointFile
  // reports a file's (each FoundCheckpoint's `line` is the row's id);
  // signatures are not checked here. A row that is not a checkpoint is
  // `bad_line`.
  Result<CheckpointFileContents> Read() const;
  // A sink inserting each checkpoint as a row (reconnecting when needed).
  std::unique_ptr<CheckpointSink> MakeSink() const;
  // "postgres user@host:port/db audit_checkpoints"
  const std::string& name() const;

  struct Impl;

 private:
  explicit PostgresCheckpoints(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// The trail's checkpoint home in the database (entries located as "row N").
std::unique_ptr<CheckpointHome> PostgresCheckpointHome(
    std::unique_ptr<PostgresCheckpoints> checkpoints);

}  // namespace airlock
