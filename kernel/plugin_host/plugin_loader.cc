#include "kernel/plugin_host/plugin_loader.h"

#include <boost/dll/shared_library.hpp>

#include <cstring>
#include <exception>
#include <utility>

#include "airlock/cpp/abi_util.hpp"
#include "kernel/common/crypto.h"
#include "kernel/plugin_host/plugin_file.h"

namespace airlock::plugin_host {
namespace {

using EntryFunction = airlock_type_status(const airlock_host_services*,
                                          const airlock_type_plugin_info**, airlock_type_error*);

constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxVersionBytes = 128;
constexpr size_t kMaxDescriptionBytes = 1024;
constexpr size_t kMaxConfigSchemaBytes = 1024 * 1024;

Status Refuse(const std::string& path, const std::string& reason) {
  return Status::InvalidArgument("plugin " + path + ": " + reason);
}

Status RefuseLoad(const std::string& path, const std::string& reason) {
  return Status::FailedPrecondition("plugin " + path + ": " + reason);
}

// Reads a NUL-terminated string from plugin memory, never past `limit` bytes.
// Returns nullopt when no terminator is found within the limit.
std::optional<std::string> BoundedString(const char* text, size_t limit) {
  if (text == nullptr) return std::string();
  const size_t length = ::strnlen(text, limit + 1);
  if (length > limit) return std::nullopt;
  return std::string(text, length);
}

bool ValidPluginName(const std::string& name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Boost.DLL reports "...load() failed (dlerror system message: <text>): <errc>";
// keep the dynamic loader's text, which is what an operator can act on.
std::string DlopenReason(const std::exception& e) {
  const std::string what = e.what();
  static constexpr std::string_view kMarker = "(dlerror system message: ";
  const size_t start = what.find(kMarker);
  if (start == std::string::npos) return what;
  const size_t begin = start + kMarker.size();
  const size_t end = what.rfind(')');
  if (end == std::string::npos || end < begin) return what.substr(begin);
  return what.substr(begin, end - begin);
}

struct NamedFunction {
  const char* name;
  bool present;
};

// The members every table of `kind` must set (create, destroy, the main functions).
std::vector<NamedFunction> MandatoryFunctions(airlock_type_plugin_kind kind, const void* vtable) {
  switch (kind) {
    case AIRLOCK_KIND_IDENTITY: {
      const auto* t = static_cast<const airlock_type_identity_vtable*>(vtable);
      return {{"create", t->create != nullptr},
              {"destroy", t->destroy != nullptr},
              {"authenticate", t->authenticate != nullptr}};
    }
    case AIRLOCK_KIND_POLICY: {
      const auto* t = static_cast<const airlock_type_policy_vtable*>(vtable);
      return {{"create", t->create != nullptr},
              {"destroy", t->destroy != nullptr},
              {"evaluate", t->evaluate != nullptr}};
    }
    case AIRLOCK_KIND_CONNECTOR: {
      const auto* t = static_cast<const airlock_type_connector_vtable*>(vtable);
      return {{"create", t->create != nullptr},
              {"destroy", t->destroy != nullptr},
              {"describe", t->describe != nullptr},
              {"pull", t->pull != nullptr}};
    }
    case AIRLOCK_KIND_TUNNEL: {
      const auto* t = static_cast<const airlock_type_tunnel_vtable*>(vtable);
      return {{"create", t->create != nullptr},
              {"destroy", t->destroy != nullptr},
              {"open", t->open != nullptr},
              {"close", t->close != nullptr}};
    }
    case AIRLOCK_KIND_ISOLATOR: {
      const auto* t = static_cast<const airlock_type_isolator_vtable*>(vtable);
      return {{"create", t->create != nullptr},
              {"destroy", t->destroy != nullptr},
              {"provision", t->provision != nullptr},
              {"terminate", t->terminate != nullptr},
              {"describe_isolation", t->describe_isolation != nullptr}};
    }
    case AIRLOCK_KIND_NOTIFIER: {
      const auto* t = static_cast<const airlock_type_notifier_vtable*>(vtable);
      return {{"create", t->create != nullptr},
              {"destroy", t->destroy != nullptr},
              {"deliver", t->deliver != nullptr}};
    }
    default:
      return {};
  }
}

// Validates what the entry point returned and builds the manifest.
Status ValidateManifest(const std::string& path, const airlock_type_plugin_info* info,
                        const std::optional<airlock_type_plugin_kind>& expected_kind,
                        PluginManifest* manifest, size_t* vtable_size) {
  if (info == nullptr) return Refuse(path, "entry point returned no manifest");
  if (info->size < AIRLOCK_PLUGIN_INFO_1_0_SIZE) {
    return Refuse(path, "manifest too small: " + std::to_string(info->size) + " < " +
                            std::to_string(AIRLOCK_PLUGIN_INFO_1_0_SIZE));
  }
  if (info->abi_major != AIRLOCK_ABI_MAJOR) {
    return Refuse(path, "built for ABI major " + std::to_string(info->abi_major) +
                            ", host speaks " + std::to_string(AIRLOCK_ABI_MAJOR));
  }
  const auto name = BoundedString(info->name, kMaxNameBytes);
  if (!name || !ValidPluginName(*name)) {
    return Refuse(path, "manifest name must be 1-" + std::to_string(kMaxNameBytes) +
                            " characters of [A-Za-z0-9._-]");
  }
  const auto version = BoundedString(info->version, kMaxVersionBytes);
  if (!version)
    return Refuse(path,
                  "manifest version is longer than " + std::to_string(kMaxVersionBytes) + " bytes");
  const auto description = BoundedString(info->description, kMaxDescriptionBytes);
  if (!description) {
    return Refuse(path, "manifest description is longer than " +
                            std::to_string(kMaxDescriptionBytes) + " bytes");
  }
  const char* kind_name = PluginKindName(info->kind);
  if (VtableMinimumSize(info->kind) == 0) {
    return Refuse(path, "unknown plugin kind " + std::to_string(info->kind));
  }
  if (expected_kind && *expected_kind != info->kind) {
    return Refuse(path, "is " + PluginKindPhrase(info->kind) + ", expected " +
                            PluginKindPhrase(*expected_kind));
  }
  nlohmann::json schema;
  if (info->config_schema != nullptr) {
    const auto text = BoundedString(info->config_schema, kMaxConfigSchemaBytes);
    if (!text) return Refuse(path, "config schema is larger than 1 MiB");
    schema = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded() || !(schema.is_object() || schema.is_boolean())) {
      return Refuse(path, "config schema is not a JSON Schema document");
    }
  }
  if (info->vtable == nullptr) return Refuse(path, "manifest has no function table");
  const size_t size = *static_cast<const size_t*>(info->vtable);
  const size_t minimum = VtableMinimumSize(info->kind);
  if (size < minimum) {
    return Refuse(path, std::string(kind_name) + " function table too small: " +
                            std::to_string(size) + " < " + std::to_string(minimum));
  }
  for (const auto& function : MandatoryFunctions(info->kind, info->vtable)) {
    if (!function.present) {
      return Refuse(
          path, std::string(kind_name) + " function table member '" + function.name + "' is NULL");
    }
  }
  manifest->name = *name;
  manifest->version = *version;
  manifest->description = *description;
  manifest->kind = info->kind;
  manifest->abi_major = info->abi_major;
  manifest->abi_minor = info->abi_minor;
  manifest->config_schema = std::move(schema);
  *vtable_size = size;
  return Status::Ok();
}

}  // namespace

PluginLoader::PluginLoader(const airlock_host_services* host, UnpinnedHashing unpinned)
    : host_(host), unpinned_(unpinned) {}

Result<std::shared_ptr<PluginLibrary>> PluginLoader::Load(
    const std::string& path, const std::optional<std::string>& sha256_pin,
    std::optional<airlock_type_plugin_kind> expected_kind) {
  const bool hash = sha256_pin.has_value() || unpinned_ == UnpinnedHashing::kHash;
  AIRLOCK_ASSIGN_OR_RETURN(CheckedPluginFile file, CheckPluginFile(path, hash));
  const std::string& shown = file.canonical_path;
  std::optional<std::string> pin;
  if (sha256_pin) {
    auto normalized = NormalizeSha256Pin(*sha256_pin);
    if (!normalized.ok()) return normalized.status().WithContext("plugin " + shown);
    pin = std::move(normalized).value();
  }

  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = libraries_.find(shown); it != libraries_.end()) {
    // Already mapped: the pin and kind are checked against what was loaded.
    const PluginManifest& loaded = it->second->manifest();
    if (pin && loaded.sha256.empty()) {
      return RefuseLoad(shown, "has a SHA-256 pin but was already loaded unpinned without a hash");
    }
    if (pin && !ConstantTimeEquals(*pin, loaded.sha256)) {
      return RefuseLoad(shown, "SHA-256 mismatch: expected " + *pin + ", actual " + loaded.sha256 +
                                   " (as loaded)");
    }
    if (expected_kind && *expected_kind != loaded.kind) {
      return Refuse(shown, "is " + PluginKindPhrase(loaded.kind) + ", expected " +
                               PluginKindPhrase(*expected_kind));
    }
    return it->second;
  }

  if (pin && !ConstantTimeEquals(*pin, file.sha256)) {
    return RefuseLoad(shown, "SHA-256 mismatch: expected " + *pin + ", actual " + file.sha256);
  }

  auto library = std::make_unique<boost::dll::shared_library>();
  try {
    library->load(boost::dll::fs::path(shown),
                  boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    return RefuseLoad(shown, "cannot be loaded: " + DlopenReason(e));
  }
  AIRLOCK_RETURN_IF_ERROR(CheckPluginFileUnchanged(file));

  EntryFunction* entry = nullptr;
  try {
    if (!library->has(AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL)) {
      return Refuse(
          shown, "does not export " AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL ": not an Airlock ABI-1 plugin");
    }
    entry = &library->get<EntryFunction>(AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL);
  } catch (const std::exception& e) {
    return RefuseLoad(
        shown, std::string("cannot resolve " AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL ": ") + e.what());
  }

  const airlock_type_plugin_info* info = nullptr;
  abi::ErrorHolder error;
  airlock_type_status rc = AIRLOCK_ERR_INTERNAL;
  try {
    rc = entry(host_, &info, error.get());
  } catch (...) {
    return RefuseLoad(shown, "entry point raised an exception");
  }
  if (rc != AIRLOCK_OK) {
    const std::string message = error.message();
    return RefuseLoad(shown, std::string("entry point failed (") +
                                 StatusCodeName(StatusCodeFromAbi(rc)) + ")" +
                                 (message.empty() ? "" : ": " + message));
  }

  PluginManifest manifest;
  size_t vtable_size = 0;
  AIRLOCK_RETURN_IF_ERROR(ValidateManifest(shown, info, expected_kind, &manifest, &vtable_size));
  manifest.path = shown;
  manifest.sha256 = file.sha256;

  // Members after ABI 1.0 are read only when the plugin's manifest has them.
  const airlock_on_check_config_plugin_ptr check_config =
      info->size >= AIRLOCK_PLUGIN_INFO_1_1_SIZE ? info->check_config : nullptr;
  auto loaded = std::make_shared<PluginLibrary>(std::move(library), std::move(manifest),
                                                info->vtable, vtable_size, check_config);
  libraries_.emplace(shown, loaded);
  return loaded;
}

std::vector<PluginManifest> PluginLoader::Loaded() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PluginManifest> manifests;
  manifests.reserve(libraries_.size());
  for (const auto& [path, library] : libraries_) manifests.push_back(library->manifest());
  return manifests;
}

}  // namespace airlock::plugin_host
