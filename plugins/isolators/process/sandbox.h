// Starting one sandboxed airlock-enclave process.
//
// The parent builds everything the child needs (argv, environment, the
// seccomp program, descriptors) before cloning, because the child of a
// multi-threaded process may only make async-signal-safe calls until exec.
// The child applies namespaces (through clone flags), its own uid/gid map,
// private mounts, descriptors, rlimits, no_new_privs and an empty capability
// set, waits for the parent's go-ahead (so it can be moved into a cgroup
// before running any enclave code), loads the seccomp filter last and execs.
// It reports what applied through a close-on-exec status pipe: end-of-file
// after the report means exec succeeded.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "root_plan.h"

namespace airlock::isolators::process {

// One bit per mechanism, in the order of kMechanismNames (config.h).
enum Mechanism : uint32_t {
  kUserNamespace = 1u << 0,
  kPidNamespace = 1u << 1,
  kMountNamespace = 1u << 2,
  kNetworkNamespace = 1u << 3,
  kIpcNamespace = 1u << 4,
  kUtsNamespace = 1u << 5,
  kNoNewPrivs = 1u << 6,
  kCapabilitiesDropped = 1u << 7,
  kRlimits = 1u << 8,
  kSeccomp = 1u << 9,
  kCgroupMemory = 1u << 10,
  kCgroupPids = 1u << 11,
  kPivotRoot = 1u << 12,
};

// The bit of a mechanism name (0 for an unknown one).
uint32_t MechanismBit(const std::string& name);
// {"user_namespace": true, ...} for every known mechanism.
Json MechanismsJson(uint32_t applied);
// The names in `wanted` that are not in `applied`, comma-separated.
std::string MissingMechanisms(uint32_t wanted, uint32_t applied);

struct SpawnRequest {
  std::string executable;     // exec'd as `<executable> --fd 3`
  int enclave_fd = -1;        // becomes fd 3 in the child; the caller keeps and closes its copy
  bool probe_only = false;    // the child reports and exits 0 instead of exec'ing
  int64_t memory_bytes = 0;   // RLIMIT_AS
  int64_t cpu_seconds = 0;    // RLIMIT_CPU when > 0
  int64_t open_files = 1024;  // RLIMIT_NOFILE
  int64_t processes = 0;      // RLIMIT_NPROC when > 0
  const std::vector<sock_filter>* seccomp = nullptr;  // none: no filter
  // The child's whole environment (NULL-terminated NAME=value array; must
  // outlive the call). Null: an empty one. Never the caller's own.
  char* const* envp = nullptr;
  // Egress: bring the private network namespace's loopback up (the enclave's
  // forwarder listens there), and bind-mount this file over /etc/hosts so
  // approved host names resolve to their loopback addresses. Either failing
  // fails the spawn. Empty hosts_file: leave /etc/hosts alone.
  bool loopback_up = false;
  std::string hosts_file;
  // A private root to pivot into (needs mount and PID namespaces, and a user
  // namespace unless the caller is root); null:
  // the host's root stays visible. Setting up every step or failing the
  // spawn: a half-built root is never used.
  const RootPlan* root = nullptr;
  // Runs in the parent after the clone, before the child may exec; returns
  // the mechanisms it applied (the cgroup bits). A failure kills the child.
  std::function<Result<uint32_t>(pid_t)> before_exec;
};

struct SpawnResult {
  pid_t pid = -1;
  uint32_t applied = 0;
};

// Clones and starts the child; returns once it has exec'd (or exited, for a
// probe, already reaped). Namespaces the host refuses are dropped one by one
// and simply not reported. The child gets PR_SET_PDEATHSIG(SIGKILL), which
// Linux ties to the calling THREAD: call this from a thread that lives as
// long as the enclaves should.
Result<SpawnResult> Spawn(const SpawnRequest& request);

// SIGKILLs `pid` and waits for it (retrying EINTR; ECHILD counts as reaped).
void KillAndReap(pid_t pid);

}  // namespace airlock::isolators::process
