#include "tests/kernel/plugin_host/test_support.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "kernel/plugin_host/secret_reference.h"

namespace airlock::plugin_host::testing {

std::string TestPlugin(std::string_view output_name) {
  return std::string(PLUGIN_HOST_TEST_PLUGIN_DIR) + "/" + std::string(output_name) + ".so";
}

void RecordingCallbacks::Log(int32_t level, std::string_view plugin, std::string_view message) {
  std::lock_guard<std::mutex> lock(mutex_);
  logs_.push_back({level, std::string(plugin), std::string(message)});
}

Status RecordingCallbacks::AuditEmit(std::string_view event_json) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!audit_status.ok()) return audit_status;
  audits_.push_back(nlohmann::json::parse(event_json));
  return Status::Ok();
}

Result<Secret> RecordingCallbacks::ResolveSecret(std::string_view reference) {
  if (!resolve_secrets) {
    return Status::PermissionDenied("the kernel does not resolve secrets");
  }
  return ResolveSecretReference(reference);
}

Status RecordingCallbacks::EnclaveServe(int fd) {
  char buffer[256];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    if (::write(fd, buffer, static_cast<size_t>(n)) != n) break;
  }
  ::close(fd);
  return Status::Ok();
}

std::vector<LogLine> RecordingCallbacks::logs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return logs_;
}

std::vector<nlohmann::json> RecordingCallbacks::audits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return audits_;
}

std::vector<nlohmann::json> RecordingCallbacks::AuditsNamed(std::string_view name) const {
  std::vector<nlohmann::json> named;
  for (const auto& event : audits()) {
    if (event.value("event", "") == name) named.push_back(event);
  }
  return named;
}

TempDir::TempDir() {
  std::string pattern = std::filesystem::temp_directory_path().string() + "/airlock-ph-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Restore permissions a test may have removed so everything can be deleted.
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::add, ec);
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(std::string_view name, std::string_view contents) const {
  const std::string file = path_ + "/" + std::string(name);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out) throw std::runtime_error("cannot write " + file);
  return file;
}

void CopyFile(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  struct stat info;
  if (::stat(from.c_str(), &info) != 0 || ::chmod(to.c_str(), info.st_mode & 0777) != 0) {
    throw std::runtime_error("cannot copy mode of " + from);
  }
}

std::string Sha256sum(const std::string& path) {
  const std::string command = "sha256sum '" + path + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run sha256sum");
  char digest[65] = {};
  const size_t n = std::fread(digest, 1, 64, pipe);
  ::pclose(pipe);
  if (n != 64) throw std::runtime_error("sha256sum printed no digest");
  return std::string(digest, 64);
}

RequestBuilder& RequestBuilder::Header(std::string name, std::string value) {
  headers_.emplace_back(std::move(name), std::move(value));
  return *this;
}

airlock_type_http_request_view RequestBuilder::view() {
  raw_.clear();
  for (const auto& [name, value] : headers_) {
    raw_.push_back({name.data(), name.size(), value.data(), value.size()});
  }
  airlock_type_http_request_view view{};
  view.size = 0;  // the proxy sets it
  view.method = method_.data();
  view.method_length = method_.size();
  view.target = target_.data();
  view.target_length = target_.size();
  view.headers = raw_.data();
  view.header_count = raw_.size();
  view.remote_address = remote_.data();
  view.remote_address_length = remote_.size();
  return view;
}

}  // namespace airlock::plugin_host::testing
