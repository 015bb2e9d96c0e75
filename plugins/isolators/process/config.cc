#include "config.h"

#include <cstring>
#include <string>
#include <vector>

#include "airlock/cpp/config_read.hpp"

namespace airlock::isolators::process {
namespace {

constexpr int64_t kMinMemoryBytes = int64_t{64} << 20;
constexpr size_t kMaxPathBytes = 4096;

Status CheckPath(const std::string& key, const std::string& value) {
  if (value.size() > kMaxPathBytes || value.find('\0') != std::string::npos) {
    return Status::InvalidArgument("process isolator configuration: " + key +
                                   " is not a usable path");
  }
  return Status::Ok();
}

}  // namespace

bool IsMechanismName(const std::string& name) {
  for (const char* known : kMechanismNames) {
    if (name == known) return true;
  }
  return false;
}

Result<ProcessConfig> ParseConfig(const Json& config) {
  if (!config.is_object()) {
    return Status::InvalidArgument("process isolator configuration must be a JSON object");
  }
  const std::string where = "process isolator configuration";
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(
      config,
      {"min_isolation", "enclave_executable", "default_memory_bytes", "cgroup_root", "state_dir"},
      where));
  ProcessConfig out;
  std::vector<std::string> minimum;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(config, "min_isolation", &minimum, false, where));
  for (const auto& name : minimum) {
    if (!IsMechanismName(name)) {
      return Status::InvalidArgument(where + ".min_isolation: unknown mechanism '" +
                                     name.substr(0, 64) + "'");
    }
    out.min_isolation.insert(name);
  }
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(config, "enclave_executable", &out.enclave_executable, false, where));
  AIRLOCK_RETURN_IF_ERROR(CheckPath("enclave_executable", out.enclave_executable));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::Int(config, "default_memory_bytes", &out.default_memory_bytes, false, where));
  if (out.default_memory_bytes < kMinMemoryBytes) {
    return Status::InvalidArgument(where + ".default_memory_bytes must be at least 64 MiB");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "cgroup_root", &out.cgroup_root, false, where));
  AIRLOCK_RETURN_IF_ERROR(CheckPath("cgroup_root", out.cgroup_root));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "state_dir", &out.state_dir, false, where));
  AIRLOCK_RETURN_IF_ERROR(CheckPath("state_dir", out.state_dir));
  return out;
}

}  // namespace airlock::isolators::process
