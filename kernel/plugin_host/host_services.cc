#include "kernel/plugin_host/host_services.h"

#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/common/crypto.h"
#include "kernel/common/json_nesting.h"

namespace airlock::plugin_host {
namespace {

HostCallbacks& Callbacks(void* host_data) {
  return *static_cast<HostCallbacks*>(host_data);
}

// Reports an exception escaping a callback as INTERNAL; nothing unwinds into plugins.
airlock_type_status CaughtException(airlock_type_error* error) {
  try {
    throw;
  } catch (const std::exception& e) {
    abi::FillError(error, std::string("host service raised an exception: ") + e.what());
  } catch (...) {
    abi::FillError(error, "host service raised an unknown exception");
  }
  return AIRLOCK_ERR_INTERNAL;
}

void OnLog(void* host_data, int32_t level, const char* plugin, const char* message,
           size_t message_length) {
  try {
    const std::string_view name = plugin != nullptr ? std::string_view(plugin) : "unknown";
    std::string_view text =
        message != nullptr ? std::string_view(message, message_length) : std::string_view();
    if (text.size() > HostServicesTable::kMaxLogMessageBytes) {
      text = text.substr(0, HostServicesTable::kMaxLogMessageBytes);
    }
    if (level < AIRLOCK_LOG_DEBUG) level = AIRLOCK_LOG_DEBUG;
    if (level > AIRLOCK_LOG_ERROR) level = AIRLOCK_LOG_ERROR;
    Callbacks(host_data).Log(level, name, text);
  } catch (...) {
    // Logging must never fail a plugin.
  }
}

airlock_type_status OnAuditEmit(void* host_data, const char* event_json, size_t length) {
  try {
    if (event_json == nullptr || length == 0) return AIRLOCK_ERR_INVALID_ARGUMENT;
    if (length > HostServicesTable::kMaxAuditEventBytes) return AIRLOCK_ERR_RESOURCE_EXHAUSTED;
    const std::string_view text(event_json, length);
    if (!JsonNestingWithin(text, HostServicesTable::kMaxAuditEventDepth)) {
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    const Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) return AIRLOCK_ERR_INVALID_ARGUMENT;
    return static_cast<airlock_type_status>(Callbacks(host_data).AuditEmit(text).code());
  } catch (...) {
    return AIRLOCK_ERR_INTERNAL;
  }
}

int64_t OnNow(void* host_data) {
  try {
    return Callbacks(host_data).NowMicros();
  } catch (...) {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
}

// Releases an airlock_type_secret made by OnSecretResolve: the Secret wipes
// its bytes (SecureWipe / OPENSSL_cleanse) before the memory is freed.
void ReleaseSecret(airlock_type_secret* secret) {
  std::unique_ptr<Secret> owned(static_cast<Secret*>(secret->private_data));
  if (owned) owned->Wipe();
  secret->data = nullptr;
  secret->length = 0;
  secret->private_data = nullptr;
  secret->release = nullptr;
}

airlock_type_status OnSecretResolve(void* host_data, const char* reference, size_t length,
                                    airlock_type_secret* secret, airlock_type_error* error) {
  try {
    if (secret == nullptr) {
      abi::FillError(error, "secret_resolve needs an output struct");
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    std::memset(secret, 0, sizeof(*secret));
    if (reference == nullptr || length == 0) {
      abi::FillError(error, "secret reference is empty");
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    if (length > HostServicesTable::kMaxSecretReferenceBytes) {
      abi::FillError(error, "secret reference is too long");
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    Result<Secret> resolved =
        Callbacks(host_data).ResolveSecret(std::string_view(reference, length));
    if (!resolved.ok()) return abi::Report(resolved.status(), error);
    auto owned = std::make_unique<Secret>(std::move(resolved).value());
    const std::string_view bytes = owned->Reveal();
    secret->data = reinterpret_cast<const uint8_t*>(bytes.data());
    secret->length = bytes.size();
    secret->private_data = owned.release();
    secret->release = &ReleaseSecret;
    return AIRLOCK_OK;
  } catch (...) {
    return CaughtException(error);
  }
}

airlock_type_status OnEnclaveServe(void* host_data, int fd, airlock_type_error* error) {
  try {
    if (fd < 0) {
      abi::FillError(error, "enclave_serve needs a connected descriptor");
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    return abi::Report(Callbacks(host_data).EnclaveServe(fd), error);
  } catch (...) {
    return CaughtException(error);
  }
}

}  // namespace

HostServicesTable::HostServicesTable(HostCallbacks& callbacks) : callbacks_(callbacks) {
  enclave_executable_ = callbacks_.EnclaveExecutable();
  std::memset(&table_, 0, sizeof(table_));
  table_.size = sizeof(table_);
  table_.abi_major = AIRLOCK_ABI_MAJOR;
  table_.abi_minor = AIRLOCK_ABI_MINOR;
  table_.host_data = &callbacks_;
  table_.log = &OnLog;
  table_.audit_emit = &OnAuditEmit;
  table_.now_unix_micros = &OnNow;
  table_.secret_resolve = &OnSecretResolve;
  table_.enclave_serve = &OnEnclaveServe;
  table_.enclave_executable = enclave_executable_.empty() ? nullptr : enclave_executable_.c_str();
}

}  // namespace airlock::plugin_host
