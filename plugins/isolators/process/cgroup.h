// Per-enclave cgroups: a memory and a pids limit under
// `<root>/airlock/<instance>/<name>`, on cgroup v2 (one unified directory) or
// v1 (memory and pids hierarchies). `<instance>` is the identity of the kernel
// that started the enclave, so one kernel finds (and reaps) only its own.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::isolators::process {

// Where enclave cgroups can go, found once at create.
struct CgroupSite {
  int version = 0;          // 0: unavailable, 1 or 2
  std::string memory_base;  // <hierarchy>/airlock/<instance> (v2: also holds pids)
  std::string pids_base;    // v1 only; empty when the pids hierarchy is unusable
  std::string reason;       // why unavailable (version 0)
  std::string Describe() const;
};

// `root_override` empty: /sys/fs/cgroup (v2 when cgroup.controllers exists,
// else v1 memory/ and pids/). Creates the airlock/<instance>/ base
// directories; `instance` must be a safe path component.
CgroupSite ProbeCgroups(const std::string& root_override, const std::string& instance);

// One enclave's cgroup. Destroying it removes the directories (the processes
// in them must be dead and reaped first).
class EnclaveCgroup {
 public:
  // Creates the directories and writes the limits. `pids_max` <= 0: no pids limit.
  static Result<std::unique_ptr<EnclaveCgroup>> Create(const CgroupSite& site,
                                                       const std::string& name,
                                                       int64_t memory_bytes, int64_t pids_max);
  ~EnclaveCgroup();
  EnclaveCgroup(const EnclaveCgroup&) = delete;
  EnclaveCgroup& operator=(const EnclaveCgroup&) = delete;

  // Moves `pid` in; the mechanisms (sandbox.h bits) now enforced on it.
  Result<uint32_t> AddProcess(pid_t pid);
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  EnclaveCgroup() = default;
  int version_ = 0;
  std::string memory_dir_, pids_dir_;
  bool memory_limited_ = false, pids_limited_ = false;
  std::vector<std::string> dirs_;  // removed at destruction, in order
};

// Removes a cgroup directory, retrying briefly while the kernel still counts
// a just-killed process in it. Best effort.
void RemoveCgroupDir(const std::string& dir);

// The enclave cgroups (sub-directories) under an instance's base directory,
// as full paths; empty when `base` is empty or unreadable.
std::vector<std::string> ListCgroupChildren(const std::string& base);

// The processes in a cgroup (its cgroup.procs), at most 4096.
std::vector<pid_t> CgroupProcesses(const std::string& dir);

}  // namespace airlock::isolators::process
