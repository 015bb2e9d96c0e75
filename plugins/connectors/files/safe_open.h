// Opening files strictly under the configured root directory. This is the
// connector's whole filesystem boundary: every read goes through OpenUnderRoot.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::connectors::files {

// An open directory, the root every path is resolved beneath.
class RootDirectory {
 public:
  // InvalidArgument when `path` is not a readable directory.
  static Result<RootDirectory> Open(const std::string& path);

  RootDirectory(RootDirectory&& other) noexcept;
  RootDirectory& operator=(RootDirectory&& other) noexcept;
  RootDirectory(const RootDirectory&) = delete;
  RootDirectory& operator=(const RootDirectory&) = delete;
  ~RootDirectory();

  // Opens `relative` read-only for a regular file beneath the root; returns
  // the descriptor (the caller owns it).
  //  - an absolute path, a ".." that leaves the root, or a symlink resolving
  //    outside it: PermissionDenied "path outside the configured root";
  //  - a missing file: NotFound; not a regular file: InvalidArgument.
  // Resolution is done by the kernel (openat2 RESOLVE_BENEATH) where it is
  // available, otherwise by realpath + prefix check + O_NOFOLLOW.
  Result<int> OpenFile(std::string_view relative) const;

  // Names of the regular files (or symlinks) directly in the root, sorted,
  // without dot-files.
  Result<std::vector<std::string>> List() const;

  const std::string& path() const { return path_; }

 private:
  RootDirectory(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Result<int> OpenWithRealpath(const std::string& relative) const;

  int fd_ = -1;
  std::string path_;  // canonical absolute path
};

}  // namespace airlock::connectors::files
