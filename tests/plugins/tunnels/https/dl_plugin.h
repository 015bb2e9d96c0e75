// Loads a built plugin the way any host would: dlopen, resolve the ABI-1
// entry point, hand it a services table, read back the manifest.
#pragma once

#include <dlfcn.h>

#include <memory>
#include <string>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"

namespace airlock::testing {

class DlPlugin {
 public:
  // Null on failure, with the reason in *error.
  static std::unique_ptr<DlPlugin> Load(const std::string& path, const airlock_host_services* host,
                                        std::string* error) {
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      *error = ::dlerror();
      return nullptr;
    }
    std::unique_ptr<DlPlugin> plugin(new DlPlugin(handle));
    auto entry = reinterpret_cast<airlock_on_plugin_entry_v1_plugin_ptr>(
        ::dlsym(handle, AIRLOCK_PLUGIN_ENTRY_V1_SYMBOL));
    if (entry == nullptr) {
      *error = "no entry point";
      return nullptr;
    }
    abi::ErrorHolder err;
    if (entry(host, &plugin->info_, err.get()) != AIRLOCK_OK) {
      *error = "entry point failed: " + err.message();
      return nullptr;
    }
    return plugin;
  }

  ~DlPlugin() { ::dlclose(handle_); }
  DlPlugin(const DlPlugin&) = delete;
  DlPlugin& operator=(const DlPlugin&) = delete;

  const airlock_type_plugin_info& info() const { return *info_; }
  template <typename Table>
  const Table& vtable() const {
    return *static_cast<const Table*>(info_->vtable);
  }

 private:
  explicit DlPlugin(void* handle) : handle_(handle) {}
  void* handle_;
  const airlock_type_plugin_info* info_ = nullptr;
};

}  // namespace airlock::testing
