// The host services a data enclave offers the connectors it loads.
//
// A plugin library keeps the host table its entry point received in a
// process-wide variable, and loading the same file twice maps it once. So
// that several enclaves can share a process (the kernel's in-process
// isolator) without one enclave's connector reaching another's host, every
// enclave in a process hands its connectors the same table
// (EnclaveHostServices()), which routes each call to the enclave whose pull
// runs on the calling thread (ScopedEnclaveHost). A call from any other
// thread is logged to stderr, and audit events and secrets are refused.
//
// Per enclave (EnclaveHost): secret references are resolved only while its
// ingestion runs (CloseSecretWindow ends that for good); logs go to its log
// function (never secret values: plugins must not log them and the host adds
// none); a connector's audit event travels to the kernel as a Progress frame
// {"audit": {...}}, so AuditEmit is ok once the frame is written, not once
// the kernel made it durable.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"
#include "kernel/enclave/channel.h"

namespace airlock::enclave {

using LogFunction =
    std::function<void(int32_t level, std::string_view source, std::string_view message)>;

// Writes "airlock-enclave <LEVEL> <source>: <message>" to stderr.
void LogToStderr(int32_t level, std::string_view source, std::string_view message);

// One enclave's side of the host services. Thread-safe.
class EnclaveHost {
 public:
  // `channel` carries audit events to the kernel; it must outlive this object.
  EnclaveHost(LogFunction log, FrameChannel& channel);

  void Log(int32_t level, std::string_view source, std::string_view message);
  Status AuditEmit(std::string_view event_json);
  // ResolveSecretReference while the window is open; FailedPrecondition after.
  Result<Secret> ResolveSecret(std::string_view reference);

  // Refuses every later secret resolution.
  void CloseSecretWindow() { secrets_open_.store(false); }

  // Names of the environment variables `env:` references resolved so far.
  std::vector<std::string> ResolvedEnvironmentNames() const;

 private:
  LogFunction log_;
  FrameChannel& channel_;
  std::atomic<bool> secrets_open_{true};
  mutable std::mutex mutex_;
  std::set<std::string> env_names_;  // GUARDED_BY(mutex_)
};

// Routes this thread's host-service calls to `host` until destroyed (then to
// whatever was routed before). Not movable.
class ScopedEnclaveHost {
 public:
  explicit ScopedEnclaveHost(EnclaveHost& host);
  ~ScopedEnclaveHost();
  ScopedEnclaveHost(const ScopedEnclaveHost&) = delete;
  ScopedEnclaveHost& operator=(const ScopedEnclaveHost&) = delete;

 private:
  EnclaveHost* previous_;
};

// The process-wide table every enclave loads its connectors with. Lives until
// the process exits. Its enclave_serve refuses (enclaves host no enclaves).
const airlock_host_services* EnclaveHostServices();

// Overwrites the values of the named environment variables in place and
// removes them, so a process that hosted only this enclave keeps no copy of
// an env: credential. Not for shared processes (the kernel): it changes the
// process environment.
void ScrubEnvironment(const std::vector<std::string>& names);

}  // namespace airlock::enclave
