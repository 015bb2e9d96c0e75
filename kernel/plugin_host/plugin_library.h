// A loaded, validated plugin shared object: its manifest and function table.
// Made only by PluginLoader; held by shared_ptr by everything that uses it, so
// the library stays mapped while any instance made from it lives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"

namespace boost::dll {
class shared_library;
}  // namespace boost::dll

namespace airlock::plugin_host {

// What a plugin says about itself, plus where it was loaded from.
struct PluginManifest {
  std::string path;    // canonical path of the shared object
  std::string sha256;  // of the file's contents when it was loaded (lowercase hex)
  std::string name;
  std::string version;
  std::string description;
  airlock_type_plugin_kind kind = 0;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  nlohmann::json config_schema;  // null when the plugin publishes none
};

// "identity", "policy", "connector", "tunnel", "isolator", "notifier";
// "unknown" otherwise.
const char* PluginKindName(airlock_type_plugin_kind kind);

// "an identity plugin", "a policy plugin", ...: for messages.
std::string PluginKindPhrase(airlock_type_plugin_kind kind);

// The inverse of PluginKindName; nullopt for anything else.
std::optional<airlock_type_plugin_kind> ParsePluginKind(std::string_view name);

// Size of the kind's first function table (AIRLOCK_<KIND>_VTABLE_1_0_SIZE, or
// the size in the minor that added the kind), 0 if unknown.
size_t VtableMinimumSize(airlock_type_plugin_kind kind);

class PluginLibrary {
 public:
  // Takes a loaded library whose manifest and table were validated by the
  // loader. `check_config` is the manifest's (ABI 1.1) member or null.
  PluginLibrary(std::unique_ptr<boost::dll::shared_library> library, PluginManifest manifest,
                const void* vtable, size_t vtable_size,
                airlock_on_check_config_plugin_ptr check_config = nullptr);
  ~PluginLibrary();  // unloads the library
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const PluginManifest& manifest() const { return manifest_; }
  // The kind's airlock_type_<kind>_vtable; valid while this object lives.
  const void* vtable() const { return vtable_; }
  // The table's own `size` member: how many bytes of it the plugin filled.
  size_t vtable_size() const { return vtable_size_; }

  // The table as its kind's struct. Call only with the struct of manifest().kind.
  template <typename Table>
  const Table& table() const {
    return *static_cast<const Table*>(vtable_);
  }

  // True when the table includes the member ending at byte `member_end`
  // (offsetof + sizeof); members appended after ABI 1.0 must be checked with
  // this (see AIRLOCK_VTABLE_HAS) before they are read.
  bool VtableHas(size_t member_end) const { return vtable_size_ >= member_end; }

  // The plugin's side-effect-free configuration check (ABI 1.1), or null
  // when its manifest has none.
  airlock_on_check_config_plugin_ptr check_config() const { return check_config_; }

 private:
  std::unique_ptr<boost::dll::shared_library> library_;
  PluginManifest manifest_;
  const void* vtable_;
  size_t vtable_size_;
  airlock_on_check_config_plugin_ptr check_config_;
};

}  // namespace airlock::plugin_host

// True when `library`'s function table (of C type `type`) includes `member`
// and the member is set. Use before calling any member added after ABI 1.0.
#define AIRLOCK_VTABLE_HAS(library, type, member)                                          \
  ((library).VtableHas(offsetof(type, member) + sizeof(((const type*)nullptr)->member)) && \
   (library).template table<type>().member != nullptr)
