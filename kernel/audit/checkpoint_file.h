// Where checkpoints are kept and found: the checkpoints file written beside
// the audit log ("<log>.checkpoints", append-only JSON lines, one checkpoint
// a line) and copies shipped elsewhere (the kernel's log output, syslog),
// where each checkpoint sits somewhere inside a longer line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/checkpoint.h"

namespace airlock {

// "<log>.checkpoints".
std::string CheckpointsPathFor(const std::string& log_path);

// The text that precedes a checkpoint in shipped log lines.
inline constexpr const char* kShippedCheckpointTag = "audit checkpoint ";

struct FoundCheckpoint {
  std::string source;  // file it was read from
  uint64_t line = 0;   // 1-based
  AuditCheckpoint checkpoint;
};

struct CheckpointFileContents {
  bool exists = false;
  std::vector<FoundCheckpoint> checkpoints;
  // Set when a complete line is not a checkpoint (strict files only).
  uint64_t bad_line = 0;
  std::string problem;
  // The file ends in bytes without a newline (a write cut short by a crash
  // or a full disk); those bytes are ignored. `torn_line` is its number.
  bool torn_tail = false;
  uint64_t torn_line = 0;
  uint64_t good_end_offset = 0;  // byte just past the last complete line
};

// Reads a checkpoints file: every complete line must be one checkpoint.
// Signatures are not checked here. A missing file is `exists == false`; a
// read error is an error.
Result<CheckpointFileContents> ReadCheckpointFile(const std::string& path);

// Reads any text file (a copy of the kernel's output, a syslog file, a
// journal export) and collects every checkpoint shipped in it; other lines
// and unreadable fragments are skipped.
Result<CheckpointFileContents> ReadShippedCheckpoints(const std::string& path);

// Appends checkpoint lines to a checkpoints file, each made durable
// (fdatasync) before Append returns. Not thread-safe: one owner.
class CheckpointFileWriter {
 public:
  // Opens or creates `path` (mode 0600). `good_end_offset` is where the
  // complete lines end (from ReadCheckpointFile); a torn tail beyond it is
  // cut off first, as it was never completed.
  static Result<std::unique_ptr<CheckpointFileWriter>> Open(const std::string& path,
                                                            uint64_t good_end_offset);
  ~CheckpointFileWriter();
  CheckpointFileWriter(const CheckpointFileWriter&) = delete;
  CheckpointFileWriter& operator=(const CheckpointFileWriter&) = delete;

  Status Append(const std::string& line);
  const std::string& path() const { return path_; }

 private:
  CheckpointFileWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

}  // namespace airlock
