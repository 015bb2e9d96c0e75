// Loads a built plugin the way any host does: dlopen, resolve the ABI-1 entry
// point, hand it a services table, read back the manifest; plus a fake host
// whose clock the test controls and whose log lines the test can inspect.
#pragma once

#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"

namespace airlock::testing {

class FakeHost {
 public:
  FakeHost() {
    std::memset(&services_, 0, sizeof(services_));
    services_.size = sizeof(services_);
    services_.abi_major = AIRLOCK_ABI_MAJOR;
    services_.abi_minor = AIRLOCK_ABI_MINOR;
    services_.host_data = this;
    services_.log = [](void* self, int32_t, const char*, const char* message, size_t length) {
      auto* host = static_cast<FakeHost*>(self);
      std::lock_guard<std::mutex> lock(host->mutex_);
      host->logs_.emplace_back(message, length);
    };
    services_.now_unix_micros = [](void* self) {
      return static_cast<FakeHost*>(self)->now_micros_.load();
    };
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const airlock_host_services* services() const { return &services_; }
  void set_now_micros(int64_t now) { now_micros_ = now; }
  std::vector<std::string> logs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_;
  }

 private:
  airlock_host_services services_;
  std::atomic<int64_t> now_micros_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> logs_;
};

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

// Creates an instance through a kind's vtable (every table starts with size,
// create, destroy) and destroys it on scope exit.
template <typename Table>
class DlInstance {
 public:
  DlInstance(const Table& table, std::string_view config) : table_(table) {
    abi::ErrorHolder err;
    status_ = table_.create(config.data(), config.size(), &instance_, err.get());
    error_ = err.message();
  }
  ~DlInstance() {
    if (instance_ != nullptr) table_.destroy(instance_);
  }
  DlInstance(const DlInstance&) = delete;
  DlInstance& operator=(const DlInstance&) = delete;

  bool ok() const { return status_ == AIRLOCK_OK && instance_ != nullptr; }
  airlock_type_status status() const { return status_; }
  const std::string& error() const { return error_; }
  void* get() const { return instance_; }

 private:
  const Table& table_;
  void* instance_ = nullptr;
  airlock_type_status status_ = AIRLOCK_ERR_UNKNOWN;
  std::string error_;
};

}  // namespace airlock::testing
