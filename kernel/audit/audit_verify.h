// Offline verification of an audit log file (the `verify` command and tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernel/audit/audit_head.h"
#include "kernel/audit/checkpoint.h"

namespace airlock {

enum class AuditVerdict {
  // Every record verified (and, with public keys, every checkpoint).
  kIntact,
  // A record or checkpoint contradicts the chain, the anchor or a signature.
  kTampered,
  // Everything verified up to a final line cut short (a crash or a full
  // disk during a write): recoverable, the kernel cuts it off at start.
  kIncompleteTail,
  // The log (or a file named for verification) could not be read.
  kUnreadable,
};

struct AuditVerifyOptions {
  // Trusted checkpoint keys; null or empty: a keyless chain check only.
  const CheckpointVerifier* verifier = nullptr;
  // The checkpoints file; empty means "<log>.checkpoints".
  std::string checkpoints_path;
  // Further files holding shipped checkpoints (the kernel's log output, a
  // syslog file), checked like those beside the log.
  std::vector<std::string> shipped_checkpoint_files;
};

struct AuditVerifyReport {
  AuditVerdict verdict = AuditVerdict::kUnreadable;
  // verdict == kIntact.
  bool ok = false;
  // Records that verified before the first problem (all of them when ok).
  uint64_t records = 0;
  // 1-based line of the first problem; 0 when ok. For a truncated tail, the
  // line where the first missing record should be.
  uint64_t bad_line = 0;
  // What is wrong (edited record, missing/inserted/reordered record,
  // malformed line, truncated tail, forged checkpoint); empty when ok.
  std::string problem;
  // Whether a "<path>.head" anchor was found and checked. Without it,
  // removal of the last records cannot be detected by the chain alone.
  bool anchor_checked = false;

  // With a verifier: checkpoints checked, and the signature coverage.
  bool signatures_checked = false;
  uint64_t checkpoints = 0;  // valid checkpoints found (all sources)
  // Records 1..covered_seq are covered by a signature; records after it
  // (up to `records`) are not (yet).
  uint64_t covered_seq = 0;
  std::string covered_time;  // time of the checkpoint at covered_seq
};

// Checks every record of the log at `path` against the hash chain, then the
// file's end against its anchor "<path>.head" when that exists, then (with
// a verifier) every checkpoint's signature and its (seq, hash) against the
// records. Reads the files; never modifies them. Safe to run while an
// AuditLog appends to it (it sees a prefix; a line being written may show as
// an incomplete final line).
AuditVerifyReport VerifyAuditFile(const std::string& path, const AuditVerifyOptions& options = {});

// The text of the anchor file ("<log>.head") naming `head` as the log's end:
// written beside an exported chain so that VerifyAuditFile checks its end.
std::string FormatAuditAnchor(const AuditHead& head);

}  // namespace airlock
