// The `airlockd audit ...` operator commands.
//
//   airlockd audit verify FILE [--public-key PEM]... [--checkpoints FILE]...
//   airlockd audit verify --config FILE [--public-key PEM]... [--checkpoints FILE]...
//   airlockd audit export --config FILE [--output PATH]
//   airlockd audit keygen --private-key PATH --public-key PATH
//
// With --config, `verify` checks the configured audit backend: the file, or
// the chain in PostgreSQL (exported from one snapshot to a temporary file
// with the head row as its anchor, and checked against this kernel's
// checkpoints file). `export` writes the PostgreSQL chain as the JSON lines
// of the file backend (to standard output, or to a new PATH with its anchor
// PATH.head), for archives and offline verification.
//
// Exit codes of `audit verify` (kAuditExit*):
//   0  intact: the chain verifies and, with --public-key, every checkpoint
//      verifies and covers every record
//   1  tampered: a record, the anchor or a checkpoint contradicts the rest
//   2  usage error, or a file cannot be read
//   3  incomplete final record (recoverable: a write cut short by a crash
//      or a full disk); everything before it verified
//   4  intact, but records after the last signed checkpoint are not covered
//      by a signature (normal while a kernel runs or after a crash)
#pragma once

#include <functional>
#include <string>

#include "airlock/cpp/status.hpp"
#include "kernel/core/config.h"

namespace airlock {

// Loads and validates the configuration file at a path.
using AuditConfigLoader = std::function<Result<KernelConfig>(const std::string& path)>;

inline constexpr int kAuditExitIntact = 0;
inline constexpr int kAuditExitTampered = 1;
inline constexpr int kAuditExitUsage = 2;
inline constexpr int kAuditExitIncompleteTail = 3;
inline constexpr int kAuditExitUncovered = 4;

// argv[first] is the word after "audit".
int RunAuditCommand(int argc, char** argv, int first, const AuditConfigLoader& load_config);

}  // namespace airlock
