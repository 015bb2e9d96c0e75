// The plugin's view of the kernel: a C++ wrapper over airlock_host_services.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::sdk {

// Secret bytes lent by the host. Move-only; release() wipes them. Never copy
// the bytes into a longer-lived string, a log line or an error message.
class SecretBytes {
 public:
  SecretBytes() { std::memset(&secret_, 0, sizeof(secret_)); }
  explicit SecretBytes(const airlock_type_secret& raw) : secret_(raw) {}
  ~SecretBytes() { reset(); }
  SecretBytes(SecretBytes&& other) noexcept : secret_(other.secret_) {
    other.secret_.release = nullptr;
    other.secret_.data = nullptr;
    other.secret_.length = 0;
  }
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      reset();
      secret_ = other.secret_;
      other.secret_.release = nullptr;
      other.secret_.data = nullptr;
      other.secret_.length = 0;
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  std::string_view view() const {
    return {reinterpret_cast<const char*>(secret_.data), secret_.length};
  }
  void reset() {
    if (secret_.release != nullptr) secret_.release(&secret_);
    secret_.data = nullptr;
    secret_.length = 0;
  }

 private:
  airlock_type_secret secret_;
};

class Host {
 public:
  Host() = default;
  Host(const airlock_host_services* services, std::string plugin_name)
      : services_(services), plugin_name_(std::move(plugin_name)) {}

  const airlock_host_services* raw() const { return services_; }

  void Log(int32_t level, std::string_view message) const {
    if (services_ != nullptr && services_->log != nullptr) {
      services_->log(services_->host_data, level, plugin_name_.c_str(), message.data(),
                     message.size());
    }
  }
  void Info(std::string_view m) const { Log(AIRLOCK_LOG_INFO, m); }
  void Warn(std::string_view m) const { Log(AIRLOCK_LOG_WARN, m); }
  void Error(std::string_view m) const { Log(AIRLOCK_LOG_ERROR, m); }

  // Appends an audit record; durable when it returns ok.
  Status Audit(const nlohmann::json& event) const {
    if (services_ == nullptr || services_->audit_emit == nullptr) {
      return Status::Unavailable("host offers no audit service");
    }
    const std::string text = event.dump();
    const airlock_type_status rc =
        services_->audit_emit(services_->host_data, text.data(), text.size());
    if (rc != AIRLOCK_OK) return Status(StatusCodeFromAbi(rc), "audit emit failed");
    return Status::Ok();
  }

  int64_t NowMicros() const {
    if (services_ != nullptr && services_->now_unix_micros != nullptr) {
      return services_->now_unix_micros(services_->host_data);
    }
    return 0;
  }

  // Resolves a secret reference (env:NAME, file:/path). Only enclave hosts do.
  Result<SecretBytes> ResolveSecret(std::string_view reference) const {
    if (services_ == nullptr || services_->secret_resolve == nullptr) {
      return Status::PermissionDenied("this host does not resolve secrets");
    }
    airlock_type_secret raw;
    std::memset(&raw, 0, sizeof(raw));
    abi::ErrorHolder error;
    const airlock_type_status rc = services_->secret_resolve(services_->host_data, reference.data(),
                                                             reference.size(), &raw, error.get());
    if (rc != AIRLOCK_OK) return error.ToStatus(rc, "secret could not be resolved");
    return SecretBytes(raw);
  }

  // Runs the enclave runtime on `fd` until the kernel closes it.
  Status EnclaveServe(int fd) const {
    if (services_ == nullptr || services_->enclave_serve == nullptr) {
      return Status::NotImplemented("host cannot serve enclaves");
    }
    abi::ErrorHolder error;
    const airlock_type_status rc = services_->enclave_serve(services_->host_data, fd, error.get());
    return error.ToStatus(rc, "enclave runtime failed");
  }

  // The directory relative paths in this plugin's configuration are relative
  // to (the kernel configuration file's directory), or empty.
  const std::string& config_dir() const { return config_dir_; }
  void set_config_dir(std::string dir) { config_dir_ = std::move(dir); }

  // A directory private to this plugin instance inside the host's state
  // directory ("$state_dir"), or empty when the host gives none. It may not
  // exist yet; the plugin creates it.
  const std::string& state_dir() const { return state_dir_; }
  void set_state_dir(std::string dir) { state_dir_ = std::move(dir); }

  // The identity of the kernel (or agent) instance running this plugin
  // ("$instance_id": lowercase hex, stable across restarts of that instance and
  // different for every other), or empty when the host gives none. Lets a
  // plugin tell what it made from what another instance on the same host made.
  const std::string& instance_id() const { return instance_id_; }
  void set_instance_id(std::string id) { instance_id_ = std::move(id); }

  // `path` made absolute against config_dir() when it is relative.
  std::string ResolvePath(const std::string& path) const {
    if (path.empty() || path[0] == '/' || config_dir_.empty()) return path;
    return config_dir_ + "/" + path;
  }

  // Path of the airlock-enclave executable, or empty.
  std::string EnclaveExecutable() const {
    if (services_ == nullptr ||
        !AIRLOCK_ABI_HAS(services_, airlock_host_services, enclave_executable) ||
        services_->enclave_executable == nullptr) {
      return {};
    }
    return services_->enclave_executable;
  }

 private:
  const airlock_host_services* services_ = nullptr;
  std::string plugin_name_;
  std::string config_dir_;
  std::string state_dir_;
  std::string instance_id_;
};

}  // namespace airlock::sdk
