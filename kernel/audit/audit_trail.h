// The kernel's audit trail: its AuditLog (the file, or the chain in
// PostgreSQL) together with its signed checkpoints. Opening it is where the kernel refuses to start
// on a history it cannot vouch for:
//   - a checkpoint in "<log>.checkpoints" that is malformed or whose
//     signature does not verify with the signing key's public half;
//   - a log that contradicts a checkpoint (edited, inserted, removed or
//     reordered records, or records removed from the end, including a log
//     that is empty or missing while checkpoints say it had records);
//   - a non-empty log without its "<log>.head" anchor, or (with a signing
//     key) without any checkpoint,
// unless the operator explicitly accepts the unverifiable history
// (`accept_unverified_history`, `airlockd serve --accept-unverified-audit-history`).
//
// While open, a Checkpointer signs the log's head periodically and on close
// and ships each checkpoint to the checkpoints file, the kernel's log output
// and (optionally) syslog.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_log.h"
#include "kernel/audit/checkpoint.h"
#include "kernel/audit/checkpointer.h"

namespace airlock {

// Where a trail keeps its checkpoints and reads them back when it opens: a
// checkpoints file beside the log (the default), or the audit_checkpoints
// table of the database the chain is in (postgres_checkpoints.h).
class CheckpointHome {
 public:
  virtual ~CheckpointHome() = default;
  virtual std::string name() const = 0;
  // Where entry `n` of what Read() found is ("line 3", "row 3").
  virtual std::string Locate(uint64_t n) const { return "line " + std::to_string(n); }
  // Every checkpoint kept here; signatures unchecked.
  virtual Result<CheckpointFileContents> Read() = 0;
  // The sink that keeps new checkpoints here; `found` is what Read() returned.
  virtual Result<std::unique_ptr<CheckpointSink>> OpenSink(const CheckpointFileContents& found) = 0;
};

// The checkpoints file at `path`.
std::unique_ptr<CheckpointHome> FileCheckpointHome(std::string path);

struct AuditTrailOptions {
  AuditOptions log;
  // Signs checkpoints; null: none are kept (the chain alone, which whoever
  // can write the state directory can recompute).
  std::unique_ptr<CheckpointSigner> signer;
  // Public keys (PEM) of earlier signing keys: their checkpoints stay
  // trusted after a rotation. The signer's own key is always trusted.
  std::vector<std::string> previous_public_keys;
  CheckpointPolicy policy;
  // Where checkpoints are kept; null: the file "<path>.checkpoints".
  std::unique_ptr<CheckpointHome> home;
  // Ship checkpoints to syslog(3) as well as to the log output.
  bool syslog = true;
  // Start although the history cannot be checked (anchor missing, no
  // checkpoint for a non-empty log). Contradictions are never accepted.
  bool accept_unverified_history = false;
};

// Opens the log a trail keeps checkpoints of, given the options the trail
// settled (trusted points, anchor acceptance).
using AuditLogOpener = std::function<Result<std::unique_ptr<AuditLog>>(AuditOptions)>;

class AuditTrail {
 public:
  // `path` is the audit log file; its checkpoints live in options.home, by
  // default "<path>.checkpoints". With `open_log`, the log is whatever it
  // opens (the chain in PostgreSQL) and `path` only places that file.
  static Result<std::unique_ptr<AuditTrail>> Open(const std::string& path,
                                                  AuditTrailOptions options,
                                                  AuditLogOpener open_log = nullptr);
  // Signs a final checkpoint.
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  AuditLog* log() const { return log_.get(); }
  // Null without a signing key.
  Checkpointer* checkpointer() const { return checkpointer_.get(); }
  // Stops the periodic signer after a last checkpoint; appends made later
  // are covered by the next run's checkpoints. Idempotent.
  void Stop();

 private:
  AuditTrail() = default;
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace airlock
