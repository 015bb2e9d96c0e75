// The kernel side of airlock_host_services: a C++ interface (HostCallbacks)
// that the kernel and the enclave runtime implement, and the C table built
// over it (HostServicesTable) that is handed to every plugin entry point.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"
#include "kernel/plugin_host/secret_reference.h"

namespace airlock::plugin_host {

// What a host offers its plugins. Every method may be called from any thread
// (plugins call the table concurrently) and must not throw; the trampolines
// still catch everything so that nothing unwinds into plugin code.
class HostCallbacks {
 public:
  virtual ~HostCallbacks() = default;

  // `plugin` is the calling plugin's name; `message` is plugin text (never secrets).
  virtual void Log(int32_t level, std::string_view plugin, std::string_view message) = 0;

  // Appends a record to the audit log; ok once durable. `event_json` is a JSON object.
  virtual Status AuditEmit(std::string_view event_json) = 0;

  // Wall clock, microseconds since the Unix epoch.
  virtual int64_t NowMicros() = 0;

  // Resolves `env:NAME` / `file:/path`. The kernel resolves only references
  // named in its own plugins' configuration and refuses every other
  // (PermissionDenied: intake never holds data-source secrets); an enclave
  // calls ResolveSecretReference.
  // Error messages must name the reference, never the value.
  virtual Result<Secret> ResolveSecret(std::string_view reference) = 0;

  // Runs the enclave runtime on `fd` until the peer closes it. Takes ownership
  // of `fd` and closes it before returning, on every path.
  virtual Status EnclaveServe(int fd) = 0;

  // Absolute path of the airlock-enclave executable, or empty. Read once, when
  // the table is built.
  virtual std::string EnclaveExecutable() = 0;
};

// The C table over a HostCallbacks. Non-copyable, non-movable: plugins keep
// the pointer returned by get(), so the table (and `callbacks`) must outlive
// every library loaded with it.
class HostServicesTable {
 public:
  explicit HostServicesTable(HostCallbacks& callbacks);
  HostServicesTable(const HostServicesTable&) = delete;
  HostServicesTable& operator=(const HostServicesTable&) = delete;

  const airlock_host_services* get() const { return &table_; }

  // Bounds on what a plugin may pass in one call.
  static constexpr size_t kMaxLogMessageBytes = 16 * 1024;  // longer messages are truncated
  static constexpr size_t kMaxAuditEventBytes = 64 * 1024;  // longer events are refused
  // Deeper events are refused: the audit log refuses lines nesting deeper
  // than audit_internal::kMaxRecordDepth, and a record wraps its event.
  static constexpr int kMaxAuditEventDepth = 64;
  static constexpr size_t kMaxSecretReferenceBytes = 4 * 1024;

 private:
  HostCallbacks& callbacks_;
  std::string enclave_executable_;
  airlock_host_services table_;
};

}  // namespace airlock::plugin_host
