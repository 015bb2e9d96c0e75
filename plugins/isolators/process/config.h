// Configuration of the process isolator.
//
// {
//   "min_isolation": ["user_namespace", "pid_namespace", "mount_namespace",
//                     "network_namespace", "ipc_namespace", "uts_namespace",
//                     "seccomp", "no_new_privs", "rlimits", "cgroup_memory",
//                     "cgroup_pids", "capabilities_dropped"],   // default []
//   "enclave_executable": "/opt/airlock/bin/airlock-enclave",   // default: the host's
//   "default_memory_bytes": 2147483648,                          // RLIMIT_AS and memory limit
//   "cgroup_root": "/sys/fs/cgroup/airlock",                     // default: probed
//   "state_dir": "/tmp/airlock-process-isolator-<uid>"           // orphan records
// }
//
// Unknown keys and unknown mechanism names are refused by name.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::isolators::process {

// Every mechanism the isolator knows, in the order it reports them.
inline constexpr const char* kMechanismNames[] = {
    "user_namespace", "pid_namespace", "mount_namespace", "network_namespace",
    "ipc_namespace",  "uts_namespace", "no_new_privs",    "capabilities_dropped",
    "rlimits",        "seccomp",       "cgroup_memory",   "cgroup_pids",
    "pivot_root"};

bool IsMechanismName(const std::string& name);

struct ProcessConfig {
  std::set<std::string> min_isolation;
  std::string enclave_executable;  // empty: ask the host
  int64_t default_memory_bytes = int64_t{2} << 30;
  std::string cgroup_root;  // empty: probe /sys/fs/cgroup
  std::string state_dir;    // empty: /tmp/airlock-process-isolator-<uid>
};

// Strict parse: InvalidArgument naming the key at fault. Relative paths are
// returned as written (the caller resolves them against the configuration).
Result<ProcessConfig> ParseConfig(const Json& config);

}  // namespace airlock::isolators::process
