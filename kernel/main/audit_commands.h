// The `airlockd audit ...` operator commands.
//
//   airlockd audit verify FILE [--public-key PEM]... [--checkpoints FILE]...
//   airlockd audit keygen --private-key PATH --public-key PATH
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

namespace airlock {

inline constexpr int kAuditExitIntact = 0;
inline constexpr int kAuditExitTampered = 1;
inline constexpr int kAuditExitUsage = 2;
inline constexpr int kAuditExitIncompleteTail = 3;
inline constexpr int kAuditExitUncovered = 4;

// argv[first] is the word after "audit".
int RunAuditCommand(int argc, char** argv, int first);

}  // namespace airlock
