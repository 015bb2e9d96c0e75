// The process isolator: each enclave is an airlock-enclave process in its own
// user, PID, mount, network, IPC and UTS namespaces (as far as the host
// allows), with no_new_privs, no capabilities, rlimits, a seccomp allow-list, a private pivot_root
// file system and, where writable, a cgroup with memory and pids limits. What applied is reported
// per enclave; `min_isolation` turns missing mechanisms into errors.
//
// Thread-safety: every public method may be called concurrently.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "cgroup.h"
#include "config.h"
#include "egress.h"
#include "environment.h"
#include "root_plan.h"
#include "sandbox.h"
#include "seccomp_policy.h"

namespace airlock::isolators::process {

// One thread that starts every enclave of an isolator instance. Linux ties
// PR_SET_PDEATHSIG to the thread that forked, so enclaves are forked from a
// thread that lives exactly as long as the instance.
class LauncherThread {
 public:
  LauncherThread();
  ~LauncherThread();  // finishes queued work, then joins
  LauncherThread(const LauncherThread&) = delete;
  LauncherThread& operator=(const LauncherThread&) = delete;

  // Runs `work` on the launcher thread and waits for it.
  void Run(const std::function<void()>& work);

 private:
  void Loop();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mutex_)
  bool stopping_ = false;                    // GUARDED_BY(mutex_)
  std::thread thread_;
};

// One running enclave process. Kill() is idempotent: SIGKILL, reap, remove
// the cgroup and the orphan record.
class EnclaveProcess {
 public:
  EnclaveProcess(pid_t pid, std::string request_id, std::unique_ptr<EnclaveCgroup> cgroup,
                 std::string record_path)
      : pid_(pid),
        request_id_(std::move(request_id)),
        cgroup_dirs_(cgroup ? cgroup->dirs() : std::vector<std::string>{}),
        cgroup_(std::move(cgroup)),
        record_path_(std::move(record_path)) {}
  ~EnclaveProcess() { Kill(); }
  EnclaveProcess(const EnclaveProcess&) = delete;
  EnclaveProcess& operator=(const EnclaveProcess&) = delete;

  void Kill();
  pid_t pid() const { return pid_; }
  const std::string& request_id() const { return request_id_; }
  // Its cgroup directories (empty without a cgroup).
  const std::vector<std::string>& cgroup_dirs() const { return cgroup_dirs_; }

 private:
  std::mutex mutex_;
  const pid_t pid_;
  const std::string request_id_;
  const std::vector<std::string> cgroup_dirs_;
  bool reaped_ = false;                    // GUARDED_BY(mutex_)
  std::unique_ptr<EnclaveCgroup> cgroup_;  // GUARDED_BY(mutex_)
  std::string record_path_;                // GUARDED_BY(mutex_)
};

// The handle the host holds for one enclave.
class ProcessEnclave final : public sdk::Enclave {
 public:
  explicit ProcessEnclave(std::shared_ptr<EnclaveProcess> process) : process_(std::move(process)) {}
  ~ProcessEnclave() override { process_->Kill(); }
  EnclaveProcess& process() { return *process_; }

 private:
  std::shared_ptr<EnclaveProcess> process_;
};

class ProcessIsolator final : public sdk::Isolator {
 public:
  // Parses the configuration, prepares the state directory and the seccomp
  // program, and probes (by starting a short-lived sandboxed child) which
  // mechanisms this host allows.
  static Result<std::unique_ptr<ProcessIsolator>> Create(const Json& config, const sdk::Host& host);
  // Kills every enclave of this instance still running.
  ~ProcessIsolator() override;

  // spec: {"request_id", "limits": {"memory_bytes", "cpu_seconds", "open_files",
  // "processes"}, "egress": [...], "read_paths": ["/abs/path", ...]}. read_paths
  // are what the enclave may read of the host (connector plugins, data
  // roots, CA files, file: secrets); bound read-only into its private root. control_fd is the
  // kernel end of an AF_UNIX stream socketpair whose other end is fd 3 of the enclave process.
  // FailedPrecondition when a min_isolation mechanism did not apply (naming
  // it) or the executable cannot be started; InvalidArgument for a bad spec.
  Result<sdk::EnclaveLaunch> Provision(const Json& spec) override;

  // SIGKILL (the whole PID namespace dies with its init), reap, remove the
  // cgroup and the record. Prompt and idempotent.
  Status Terminate(sdk::Enclave& enclave) override;

  // {"isolator":"process","isolation":"process","development_only":false,
  //  "mechanisms":{name: bool}, "cgroup": "...", "seccomp": "allow-list",
  //  "filesystem": "pivot_root: ..." | "host root ..."}
  Json DescribeIsolation() override;

  // Kills what an earlier run of this kernel instance left: every process in
  // an enclave cgroup under airlock/<instance id>/ that is not a live enclave
  // of this object, and every enclave recorded in <state_dir>/instance-<id>/
  // that still runs airlock-enclave with the recorded start time; removes
  // those cgroups and records. Enclaves of other kernels (other instance ids)
  // are never looked at.
  Status ReapOrphans() override;

 private:
  ProcessIsolator(ProcessConfig config, sdk::Host host)
      : config_(std::move(config)), host_(std::move(host)) {}
  Status WriteRecord(const std::string& path, pid_t pid, const std::string& request_id,
                     const std::vector<std::string>& cgroup_dirs);

  ProcessConfig config_;
  sdk::Host host_;
  std::string instance_id_;  // the kernel instance's identity (a safe path component)
  std::string records_dir_;  // <state_dir>/instance-<instance_id_>: orphan records
  std::string executable_;
  std::vector<sock_filter> seccomp_program_;
  std::string root_mount_point_;  // <state_dir>/root
  std::string root_unavailable_;  // why the probe could not pivot_root, or empty
  CgroupSite cgroups_;
  uint32_t supported_ = 0;
  uint32_t required_ = 0;
  LauncherThread launcher_;
  std::mutex mutex_;
  std::vector<std::weak_ptr<EnclaveProcess>> started_;  // GUARDED_BY(mutex_)
};

}  // namespace airlock::isolators::process
