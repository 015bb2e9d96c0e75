#include "kernel/enclave/enclave_host.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "kernel/common/crypto.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/secret_reference.h"

namespace airlock::enclave {
namespace {

const char* LevelName(int32_t level) {
  switch (level) {
    case AIRLOCK_LOG_DEBUG:
      return "DEBUG";
    case AIRLOCK_LOG_INFO:
      return "INFO";
    case AIRLOCK_LOG_WARN:
      return "WARN";
    default:
      return "ERROR";
  }
}

// The enclave whose pull runs on this thread, if any.
thread_local EnclaveHost* current_host = nullptr;

// The callbacks behind the process-wide table: forwards to current_host.
class RoutingCallbacks final : public plugin_host::HostCallbacks {
 public:
  void Log(int32_t level, std::string_view plugin, std::string_view message) override {
    if (current_host != nullptr) {
      current_host->Log(level, plugin, message);
    } else {
      LogToStderr(level, plugin, message);
    }
  }
  Status AuditEmit(std::string_view event_json) override {
    if (current_host == nullptr) {
      return Status::FailedPrecondition("audit events are accepted only from a pull's own thread");
    }
    return current_host->AuditEmit(event_json);
  }
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  Result<Secret> ResolveSecret(std::string_view reference) override {
    if (current_host == nullptr) {
      return Status::PermissionDenied("secrets are resolved only on a pull's own thread");
    }
    return current_host->ResolveSecret(reference);
  }
  Status EnclaveServe(int fd) override {
    if (fd >= 0) ::close(fd);
    return Status::NotImplemented("an enclave does not host other enclaves");
  }
  std::string EnclaveExecutable() override { return {}; }
};

}  // namespace

void LogToStderr(int32_t level, std::string_view source, std::string_view message) {
  std::string line = "airlock-enclave ";
  line += LevelName(level);
  line += ' ';
  line += source;
  line += ": ";
  line += message;
  line += '\n';
  // One write per line keeps concurrent lines whole.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

EnclaveHost::EnclaveHost(LogFunction log, FrameChannel& channel)
    : log_(log ? std::move(log) : LogFunction(&LogToStderr)), channel_(channel) {}

void EnclaveHost::Log(int32_t level, std::string_view source, std::string_view message) {
  log_(level, source, message);
}

Status EnclaveHost::AuditEmit(std::string_view event_json) {
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json event, ParseJsonObject(event_json, "audit event"));
  return channel_.SendJson(FrameType::kProgress, nlohmann::json{{"audit", std::move(event)}});
}

Result<Secret> EnclaveHost::ResolveSecret(std::string_view reference) {
  if (!secrets_open_.load()) {
    return Status::FailedPrecondition(
        "secrets are resolved only while the enclave ingests its datasets");
  }
  Result<Secret> secret = plugin_host::ResolveSecretReference(reference);
  if (secret.ok() && reference.substr(0, 4) == "env:") {
    std::lock_guard<std::mutex> lock(mutex_);
    env_names_.emplace(reference.substr(4));
  }
  return secret;
}

std::vector<std::string> EnclaveHost::ResolvedEnvironmentNames() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {env_names_.begin(), env_names_.end()};
}

ScopedEnclaveHost::ScopedEnclaveHost(EnclaveHost& host) : previous_(current_host) {
  current_host = &host;
}

ScopedEnclaveHost::~ScopedEnclaveHost() {
  current_host = previous_;
}

const airlock_host_services* EnclaveHostServices() {
  static RoutingCallbacks callbacks;
  static plugin_host::HostServicesTable table(callbacks);
  return table.get();
}

void ScrubEnvironment(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (char* value = std::getenv(name.c_str()); value != nullptr) {
      SecureWipe(value, std::strlen(value));
    }
    ::unsetenv(name.c_str());
  }
}

}  // namespace airlock::enclave
