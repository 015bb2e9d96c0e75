// An exclusive advisory lock (flock) on a lock file, held for the lifetime
// of the object: how a component that must be the only writer of its files
// refuses to start next to another process (or another instance in this
// process) that has them open. The lock goes away with the process, so a
// crash never leaves a stale lock behind.
#pragma once

#include <string>

#include "airlock/cpp/status.hpp"

namespace airlock {

class FileLock {
 public:
  // Creates `path` (mode 0600) if needed and locks it without waiting.
  // FailedPrecondition when someone else holds it; Unavailable when the file
  // cannot be opened.
  static Result<FileLock> Acquire(const std::string& path);

  FileLock() = default;
  ~FileLock();
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  bool held() const { return fd_ >= 0; }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace airlock
