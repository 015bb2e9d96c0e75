// Offline verification of an audit log file (the `verify` command and tests).
#pragma once

#include <cstdint>
#include <string>

namespace airlock {

struct AuditVerifyReport {
  bool ok = false;
  // Records that verified before the first problem (all of them when ok).
  uint64_t records = 0;
  // 1-based line of the first problem; 0 when ok. For a truncated tail, the
  // line where the first missing record should be.
  uint64_t bad_line = 0;
  // What is wrong (edited record, missing/inserted/reordered record,
  // malformed line, truncated tail); empty when ok.
  std::string problem;
  // Whether a "<path>.head" anchor was found and checked. Without it,
  // removal of the last records cannot be detected.
  bool anchor_checked = false;
};

// Checks every record of the log at `path` against the hash chain, then the
// file's end against its anchor "<path>.head" when that exists. Reads the
// file; never modifies it. Safe to run while an AuditLog appends to it (it
// sees a prefix; a line being written may show as an incomplete final line).
AuditVerifyReport VerifyAuditFile(const std::string& path);

}  // namespace airlock
