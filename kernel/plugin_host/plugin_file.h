// Trust checks on a plugin file before it is mapped into the process: the
// refusals that do not need the code to run. PluginLoader runs them on every
// load; callers may run them ahead (e.g. to report every bad file at start-up).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "airlock/cpp/status.hpp"

namespace airlock::plugin_host {

// A plugin file that passed CheckPluginFile.
struct CheckedPluginFile {
  std::string canonical_path;  // symlinks in parent directories resolved
  std::string sha256;          // lowercase hex, of the bytes read through the checked descriptor;
                               // empty when the check was asked not to hash
  dev_t device = 0;
  ino_t inode = 0;
};

// Largest plugin file the host hashes and loads.
inline constexpr uint64_t kMaxPluginFileBytes = 1ull << 30;

// Resolves `path` (relative paths against the working directory) and refuses,
// with FailedPrecondition naming the file and the reason: an empty path, a
// missing file, a symbolic link (the last component), anything but a regular
// file, a file writable by group or others, a containing directory writable by
// group or others without the sticky bit, an unreadable or oversized file.
// Hashes the contents with SHA-256 through the same descriptor it checked,
// unless `hash` is false (then `sha256` stays empty and the contents are not
// read: hashing reads the whole file, tens of MB for a build with debug info).
Result<CheckedPluginFile> CheckPluginFile(const std::string& path, bool hash = true);

// Ok when the file at `file.canonical_path` is still the inode that was
// checked (it was not swapped between the checks and dlopen).
Status CheckPluginFileUnchanged(const CheckedPluginFile& file);

// Lowercase form of a configured SHA-256 pin; InvalidArgument unless it is
// 64 hex digits.
Result<std::string> NormalizeSha256Pin(const std::string& pin);

}  // namespace airlock::plugin_host
