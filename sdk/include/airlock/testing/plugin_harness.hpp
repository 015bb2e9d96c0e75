// What every conformance kit needs to drive a plugin as a host would: a
// process-wide host services table that records log lines and resolves
// secret references (KitHost), and loading a plugin file through its ABI-1
// entry point with the manifest checked (EnterPluginFile, CheckManifest).
//
// Header-only. Depends on the SDK headers and dlopen (link ${CMAKE_DL_LIBS}).
// Thread-safety: KitHost is safe to call from any thread.
#pragma once

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::conformance {

// ===========================================================================
// The kit's host: a process-wide services table (a plugin may keep the table
// its entry point was given, so it must outlive every loaded library).
// ===========================================================================

class KitHost {
 public:
  static KitHost& Get() {
    static KitHost host;
    return host;
  }

  const airlock_host_services* services() const { return &services_; }

  // The airlock-enclave executable isolators are told to start.
  void SetEnclaveExecutable(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    enclave_executable_ = path;
    services_.enclave_executable =
        enclave_executable_.empty() ? nullptr : enclave_executable_.c_str();
  }

  void Configure(std::map<std::string, std::string> references) {
    std::lock_guard<std::mutex> lock(mutex_);
    references_ = std::move(references);
  }

  std::vector<std::string> logs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_;
  }
  void ClearLogs() {
    std::lock_guard<std::mutex> lock(mutex_);
    logs_.clear();
  }

 private:
  KitHost() {
    std::memset(&services_, 0, sizeof(services_));
    services_.size = sizeof(services_);
    services_.abi_major = AIRLOCK_ABI_MAJOR;
    services_.abi_minor = AIRLOCK_ABI_MINOR;
    services_.host_data = this;
    services_.log = &Log;
    services_.audit_emit = [](void*, const char*, size_t) -> airlock_type_status {
      return AIRLOCK_OK;
    };
    services_.now_unix_micros = [](void*) -> int64_t {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    services_.secret_resolve = &Resolve;
    // No enclave runtime: an in-process "enclave" holds its channel until
    // the isolator shuts it (what the isolator kit checks), then closes it.
    services_.enclave_serve = [](void*, int fd, airlock_type_error*) -> airlock_type_status {
      char buffer[4096];
      while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n == 0 || (n < 0 && errno != EINTR)) break;
      }
      ::close(fd);
      return AIRLOCK_OK;
    };
    services_.enclave_executable = nullptr;
  }

  static void Log(void* self, int32_t, const char* plugin, const char* message, size_t length) {
    auto* host = static_cast<KitHost*>(self);
    std::lock_guard<std::mutex> lock(host->mutex_);
    host->logs_.push_back(std::string(plugin != nullptr ? plugin : "") + ": " +
                          std::string(message != nullptr ? message : "", length));
  }

  static airlock_type_status Resolve(void* self, const char* reference, size_t length,
                                     airlock_type_secret* secret, airlock_type_error* error) {
    auto* host = static_cast<KitHost*>(self);
    const std::string ref(reference, length);
    std::optional<std::string> value;
    {
      std::lock_guard<std::mutex> lock(host->mutex_);
      if (auto it = host->references_.find(ref); it != host->references_.end()) {
        value = it->second;
      }
    }
    if (!value && ref.rfind("env:", 0) == 0) {
      if (const char* env = std::getenv(ref.c_str() + 4)) value = std::string(env);
    } else if (!value && ref.rfind("file:", 0) == 0) {
      std::ifstream in(ref.substr(5), std::ios::binary);
      if (in) value = std::string(std::istreambuf_iterator<char>(in), {});
    }
    if (!value) {
      abi::FillError(error, "secret reference cannot be resolved by the conformance host");
      return AIRLOCK_ERR_NOT_FOUND;
    }
    auto owned = std::make_unique<std::string>(std::move(*value));
    secret->data = reinterpret_cast<const uint8_t*>(owned->data());
    secret->length = owned->size();
    secret->private_data = owned.release();
    secret->release = [](airlock_type_secret* s) {
      std::unique_ptr<std::string> text(static_cast<std::string*>(s->private_data));
      volatile char* bytes = text->data();
      for (size_t i = 0; i < text->size(); ++i) bytes[i] = 0;
      s->data = nullptr;
      s->length = 0;
      s->private_data = nullptr;
      s->release = nullptr;
    };
    return AIRLOCK_OK;
  }

  airlock_host_services services_;
  mutable std::mutex mutex_;
  std::vector<std::string> logs_;
  std::map<std::string, std::string> references_;
  std::string enclave_executable_;
};

// ===========================================================================
// Loading a plugin through its entry point.
// ===========================================================================

// Calls `entry` with the kit's host services; the manifest it returns.
inline Result<const airlock_type_plugin_info*> EnterPlugin(
    airlock_on_plugin_entry_v1_plugin_ptr entry) {
  const airlock_type_plugin_info* info = nullptr;
  abi::ErrorHolder error;
  const airlock_type_status rc = entry(KitHost::Get().services(), &info, error.get());
  if (rc != AIRLOCK_OK) return error.ToStatus(rc, "the entry point failed");
  if (info == nullptr) return Status::Internal("the entry point returned no manifest");
  return info;
}

// Loads the plugin at `path` (kept loaded for the process: a host never
// unloads a library whose entry point kept its table) and enters it.
inline Result<const airlock_type_plugin_info*> EnterPluginFile(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, void*> loaded;
  airlock_on_plugin_entry_v1_plugin_ptr entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    void*& handle = loaded[path];
    if (handle == nullptr) {
      handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        const char* why = ::dlerror();
        return Status::NotFound("cannot load " + path + ": " +
                                (why != nullptr ? why : "dlopen failed"));
      }
    }
    entry = reinterpret_cast<airlock_on_plugin_entry_v1_plugin_ptr>(
        ::dlsym(handle, AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL));
  }
  if (entry == nullptr)
    return Status::NotFound(path + " exports no " AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL);
  return EnterPlugin(entry);
}

// The manifest is ABI 1's and of `kind`.
inline Status CheckManifest(const airlock_type_plugin_info& info, airlock_type_plugin_kind kind,
                            const std::string& kind_name) {
  if (info.size < AIRLOCK_PLUGIN_INFO_1_0_SIZE) {
    return Status::InvalidArgument("the plugin manifest is smaller than ABI 1.0's");
  }
  if (info.abi_major != AIRLOCK_ABI_MAJOR) {
    return Status::InvalidArgument("the plugin speaks ABI major " + std::to_string(info.abi_major));
  }
  if (info.kind != kind) {
    return Status::InvalidArgument("the plugin is not a " + kind_name + " (kind " +
                                   std::to_string(info.kind) + ")");
  }
  return Status::Ok();
}

// The `kind` table of a plugin whose manifest is `info`: its manifest
// checked, and InvalidArgument when the table is missing or smaller than ABI
// 1.0's (`min_size`). `kind_name` names the kind in the manifest error,
// `table_name` in the table error.
template <typename Table>
Result<const Table*> TableOf(const airlock_type_plugin_info& info, airlock_type_plugin_kind kind,
                             const std::string& kind_name, const std::string& table_name,
                             size_t min_size) {
  AIRLOCK_RETURN_IF_ERROR(CheckManifest(info, kind, kind_name));
  const auto* table = static_cast<const Table*>(info.vtable);
  if (table == nullptr || table->size < min_size) {
    return Status::InvalidArgument("the " + table_name +
                                   " table is missing or smaller than ABI 1.0's");
  }
  return table;
}

// TableOf the plugin at `path` (loaded once per process, kept loaded).
template <typename Table>
Result<const Table*> LoadTable(const std::string& path, airlock_type_plugin_kind kind,
                               const std::string& kind_name, const std::string& table_name,
                               size_t min_size) {
  AIRLOCK_ASSIGN_OR_RETURN(const airlock_type_plugin_info* info, EnterPluginFile(path));
  return TableOf<Table>(*info, kind, kind_name, table_name, min_size);
}

}  // namespace airlock::conformance
