// The host services a data enclave offers the connectors it loads.
//
// Unlike the kernel, an enclave resolves secret references, but only while
// its ingestion runs: CloseSecretWindow() ends that for good. Logs go to the
// enclave's log function (never secret values: plugins must not log them and
// the host adds none). A connector's audit event travels to the kernel as a
// Progress frame {"audit": {...,"plugin": name?}}; AuditEmit is therefore ok
// once the frame is written, not once the kernel made it durable.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/enclave/channel.h"
#include "kernel/plugin_host/host_services.h"

namespace airlock::enclave {

using LogFunction =
    std::function<void(int32_t level, std::string_view source, std::string_view message)>;

// Writes "airlock-enclave <LEVEL> <source>: <message>" to stderr.
void LogToStderr(int32_t level, std::string_view source, std::string_view message);

class EnclaveHostCallbacks final : public plugin_host::HostCallbacks {
 public:
  // `channel` carries audit events to the kernel; it must outlive this object.
  EnclaveHostCallbacks(LogFunction log, FrameChannel& channel);

  void Log(int32_t level, std::string_view plugin, std::string_view message) override;
  Status AuditEmit(std::string_view event_json) override;
  int64_t NowMicros() override;
  // ResolveSecretReference while the window is open; FailedPrecondition after.
  Result<Secret> ResolveSecret(std::string_view reference) override;
  // An enclave does not host further enclaves: closes `fd`, NotImplemented.
  Status EnclaveServe(int fd) override;
  std::string EnclaveExecutable() override { return {}; }

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

// Overwrites the values of the named environment variables in place and
// removes them, so a process that hosted only this enclave keeps no copy of
// an env: credential. Not for shared processes (the kernel): it changes the
// process environment.
void ScrubEnvironment(const std::vector<std::string>& names);

}  // namespace airlock::enclave
