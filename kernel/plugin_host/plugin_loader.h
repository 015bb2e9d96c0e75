// Loads plugin shared objects through the ABI-1 entry point and refuses any
// that cannot be trusted or understood, with a message naming the file and
// the reason.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/status.hpp"
#include "kernel/plugin_host/plugin_library.h"

namespace airlock::plugin_host {

// Thread-safe. The host services table passed in must outlive the loader and
// every library it loads (plugins keep the pointer).
class PluginLoader {
 public:
  // Whether a library loaded without a SHA-256 pin is still hashed (its
  // manifest then carries the hash). kSkip saves reading the whole file for a
  // loader whose manifests nobody reports: a pinned load is always hashed.
  enum class UnpinnedHashing { kHash, kSkip };

  explicit PluginLoader(const airlock_host_services* host,
                        UnpinnedHashing unpinned = UnpinnedHashing::kHash);
  PluginLoader(const PluginLoader&) = delete;
  PluginLoader& operator=(const PluginLoader&) = delete;

  // Loads the plugin at `path` (relative paths are resolved against the
  // working directory), or returns the library already loaded from the same
  // canonical path. Refuses with FailedPrecondition (the file or the load) or
  // InvalidArgument (what the plugin declares), naming the file and why:
  //  - missing file, symbolic link, not a regular file, file writable by group
  //    or others, directory writable by group or others without sticky bit;
  //  - `sha256_pin` set and different from the file's SHA-256 (both shown), or
  //    set for a library this loader already loaded unpinned without a hash
  //    (UnpinnedHashing::kSkip): what is mapped cannot be checked any more;
  //  - dlopen failure (with the dynamic loader's text);
  //  - no airlock_plugin_entry_v1 symbol, or the entry point failed;
  //  - manifest missing or smaller than AIRLOCK_PLUGIN_INFO_1_0_SIZE, ABI major
  //    other than 1, invalid name, unknown kind, kind other than
  //    `expected_kind`, config schema not JSON;
  //  - function table missing, smaller than the kind's 1.0 size, or with a
  //    mandatory member NULL (optional: policy reload, isolator reap_orphans).
  Result<std::shared_ptr<PluginLibrary>> Load(
      const std::string& path, const std::optional<std::string>& sha256_pin,
      std::optional<airlock_type_plugin_kind> expected_kind = {});

  // Manifests of every library this loader holds, ordered by path.
  std::vector<PluginManifest> Loaded() const;

 private:
  const airlock_host_services* host_;
  const UnpinnedHashing unpinned_;
  mutable std::mutex mutex_;
  // Keyed by canonical path. GUARDED_BY(mutex_)
  std::map<std::string, std::shared_ptr<PluginLibrary>> libraries_;
};

}  // namespace airlock::plugin_host
