// Shared fixtures for the plugin host tests: a recording HostCallbacks, temp
// directories, paths of the test plugins and an HTTP request view builder.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/plugin_host/host_services.h"

namespace airlock::plugin_host::testing {

// Path of a test plugin built by tests/kernel/plugin_host/CMakeLists.txt.
std::string TestPlugin(std::string_view output_name);

struct LogLine {
  int32_t level;
  std::string plugin;
  std::string message;
};

// Records what plugins send; the enclave runtime echoes bytes until EOF.
class RecordingCallbacks : public HostCallbacks {
 public:
  void Log(int32_t level, std::string_view plugin, std::string_view message) override;
  Status AuditEmit(std::string_view event_json) override;
  int64_t NowMicros() override { return kNow; }
  Result<Secret> ResolveSecret(std::string_view reference) override;
  Status EnclaveServe(int fd) override;
  std::string EnclaveExecutable() override { return "/opt/airlock/bin/airlock-enclave"; }

  std::vector<LogLine> logs() const;
  std::vector<nlohmann::json> audits() const;
  // Audit events whose "event" member equals `name`.
  std::vector<nlohmann::json> AuditsNamed(std::string_view name) const;

  static constexpr int64_t kNow = 1'700'000'000'123'456;
  bool resolve_secrets = true;  // false: refuse like the kernel does
  Status audit_status = Status::Ok();

 private:
  mutable std::mutex mutex_;
  std::vector<LogLine> logs_;
  std::vector<nlohmann::json> audits_;
};

// A fresh directory (mode 0700) removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Write(std::string_view name, std::string_view contents) const;

 private:
  std::string path_;
};

// Copies `from` to `to` keeping the mode bits.
void CopyFile(const std::string& from, const std::string& to);

// SHA-256 of a file computed by the sha256sum program (independent of the
// code under test).
std::string Sha256sum(const std::string& path);

// Owns the header array an airlock_type_http_request_view points into.
class RequestBuilder {
 public:
  RequestBuilder& Header(std::string name, std::string value);
  airlock_type_http_request_view view();

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<airlock_type_header> raw_;
  std::string method_ = "POST";
  std::string target_ = "/v1/requests";
  std::string remote_ = "127.0.0.1:5555";
};

}  // namespace airlock::plugin_host::testing
