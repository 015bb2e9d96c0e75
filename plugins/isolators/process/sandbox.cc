#include "sandbox.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "config.h"

namespace airlock::isolators::process {
namespace {

// Descriptor numbers in the child.
constexpr int kChildEnclaveFd = 3;
constexpr int kChildStatusFd = 4;
constexpr int kChildGoFd = 5;

constexpr uint32_t kReportMagic = 0x41524c4b;  // "ARLK"
constexpr int kStatusTimeoutMs = 10000;

// What the child writes on the status pipe: one report before exec, and a
// second one only if exec (or setup) failed.
struct Report {
  uint32_t magic;
  uint32_t applied;
  int32_t failed_step;  // 0: none
  int32_t error;        // errno of the failed step
};

enum Step : int32_t {
  kStepNone = 0,
  kStepIdMap = 1,
  kStepDescriptors = 2,
  kStepGo = 3,
  kStepExec = 4,
  kStepNetwork = 5,
  kStepRoot = 6,
};

const char* StepName(int32_t step) {
  switch (step) {
    case kStepIdMap:
      return "writing the user namespace id maps";
    case kStepDescriptors:
      return "arranging descriptors";
    case kStepGo:
      return "waiting for the parent";
    case kStepExec:
      return "exec";
    case kStepNetwork:
      return "setting up the enclave's loopback network for egress";
    case kStepRoot:
      return "building the private root file system";
    default:
      return "setup";
  }
}

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

struct ChildRootStep {
  int kind;  // RootStep::Kind
  const char* target;
  const char* source;
  size_t source_size;
};

// Everything the child reads, prepared before the clone.
struct ChildPlan {
  const char* executable;
  char* const* argv;
  char* const* envp;
  int enclave_fd, status_fd, go_fd, devnull_fd;
  uid_t uid;
  gid_t gid;
  unsigned long clone_flags;
  bool probe_only;
  rlim_t memory_bytes, cpu_seconds, open_files, processes;
  const sock_fprog* seccomp;
  bool loopback_up;
  const char* hosts_file;  // null: none
  // The private root: new_root plus steps (pointers into the caller's RootPlan).
  const char* new_root;  // null: keep the host's root
  const ChildRootStep* root_steps;
  size_t root_step_count;
  char uid_map[64];
  char gid_map[64];
};

// Async-signal-safe helpers for the child.
bool WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteFile(const char* path, const char* text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = WriteAll(fd, text, std::strlen(text));
  ::close(fd);
  return ok;
}

[[noreturn]] void ChildFail(int status_fd, uint32_t applied, int32_t step, int err) {
  const Report report{kReportMagic, applied, step, err};
  WriteAll(status_fd, &report, sizeof report);
  ::_exit(127);
}

// Moves `fd` to a number >= 16 so the dup2s below never overwrite each other.
int Lift(int fd) {
  return ::fcntl(fd, F_DUPFD_CLOEXEC, 16);
}

// Makes the bind mount at `target` read-only, nosuid and (unless it carries a
// device) nodev. Flags the source mount had are locked by the kernel when it
// belongs to an outer user namespace and must be repeated, or the remount fails.
bool RemountReadOnly(const char* target, bool device) {
  struct statfs fs {};
  if (::statfs(target, &fs) != 0) return false;
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID;
  if (!device || (fs.f_flags & ST_NODEV)) flags |= MS_NODEV;
  if (fs.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
  if (fs.f_flags & ST_NOATIME) flags |= MS_NOATIME;
  if (fs.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (fs.f_flags & ST_RELATIME) flags |= MS_RELATIME;
  return ::mount(nullptr, target, nullptr, flags, nullptr) == 0;
}

// Builds the private root and pivots into it; false with errno set on failure.
bool EnterPrivateRoot(const ChildPlan& plan) {
  if (::mount("airlock-root", plan.new_root, "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=4194304") != 0) {
    return false;
  }
  for (size_t i = 0; i < plan.root_step_count; ++i) {
    const ChildRootStep& step = plan.root_steps[i];
    switch (step.kind) {
      case RootStep::kMkdir:
        if (::mkdir(step.target, 0755) != 0 && errno != EEXIST) return false;
        break;
      case RootStep::kTouch: {
        const int fd = ::open(step.target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) return false;
        ::close(fd);
        break;
      }
      case RootStep::kBind:
      case RootStep::kBindDev:
        if (::mount(step.source, step.target, nullptr, MS_BIND, nullptr) != 0 ||
            !RemountReadOnly(step.target, step.kind == RootStep::kBindDev)) {
          return false;
        }
        break;
      case RootStep::kSymlink:
        if (::symlink(step.source, step.target) != 0) return false;
        break;
      case RootStep::kTmpfs:
        if (::mount("tmpfs", step.target, "tmpfs", MS_NOSUID | MS_NODEV, step.source) != 0) {
          return false;
        }
        break;
      case RootStep::kProc:
        if (::mount("proc", step.target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
          return false;
        }
        break;
      case RootStep::kWrite: {
        const int fd =
            ::open(step.target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) return false;
        const bool ok = WriteAll(fd, step.source, step.source_size);
        ::close(fd);
        if (!ok) return false;
        break;
      }
      default:
        errno = EINVAL;
        return false;
    }
  }
  // pivot_root(2): the old root goes to /.old-root, which is then detached so
  // nothing of the host's tree stays reachable.
  if (::chdir(plan.new_root) != 0 || ::syscall(SYS_pivot_root, ".", ".old-root") != 0 ||
      ::chdir("/") != 0 || ::umount2("/.old-root", MNT_DETACH) != 0 || ::rmdir("/.old-root") != 0) {
    return false;
  }
  // The root itself (mount points and generated /etc files) becomes read-only;
  // /tmp stays a writable tmpfs of its own.
  return ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                 nullptr) == 0;
}

bool SetLimit(int resource, rlim_t value) {
  const rlimit limit{value, value};
  return ::setrlimit(resource, &limit) == 0;
}

[[noreturn]] void ChildMain(const ChildPlan& plan) {
  uint32_t applied = 0;
  int status_fd = plan.status_fd;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);

  if (plan.clone_flags & CLONE_NEWUSER) {
    // Map the caller's own uid and gid, and nothing else.
    if (!WriteFile("/proc/self/setgroups", "deny") ||
        !WriteFile("/proc/self/uid_map", plan.uid_map) ||
        !WriteFile("/proc/self/gid_map", plan.gid_map)) {
      ChildFail(status_fd, applied, kStepIdMap, errno);
    }
    applied |= kUserNamespace;
  }
  if (plan.clone_flags & CLONE_NEWPID) applied |= kPidNamespace;
  if (plan.clone_flags & CLONE_NEWNS) {
    // Nothing mounted in here propagates back to the host, and vice versa.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0) {
      applied |= kMountNamespace;
    }
  }
  if (plan.clone_flags & CLONE_NEWNET) applied |= kNetworkNamespace;  // only `lo`, down
  if (plan.clone_flags & CLONE_NEWIPC) applied |= kIpcNamespace;
  if (plan.clone_flags & CLONE_NEWUTS) applied |= kUtsNamespace;
  if (plan.loopback_up) {
    // Only in a namespace of our own: the host's interfaces are not ours to touch.
    if (!(plan.clone_flags & CLONE_NEWNET)) ChildFail(status_fd, applied, kStepNetwork, EPERM);
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq request{};
    std::memcpy(request.ifr_name, "lo", 3);
    if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &request) != 0) {
      ChildFail(status_fd, applied, kStepNetwork, errno);
    }
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(s, SIOCSIFFLAGS, &request) != 0) ChildFail(status_fd, applied, kStepNetwork, errno);
    ::close(s);
  }
  if (plan.new_root != nullptr) {
    // Only in a mount namespace of our own (so nothing here touches the
    // host) and a PID namespace (for a /proc of the enclave's processes only).
    // Mounting needs the user namespace, or a kernel running as root.
    if (!(applied & kMountNamespace) || !(plan.clone_flags & CLONE_NEWPID)) {
      ChildFail(status_fd, applied, kStepRoot, EPERM);
    }
    if (!EnterPrivateRoot(plan)) ChildFail(status_fd, applied, kStepRoot, errno);
    applied |= kPivotRoot;
  }
  if (plan.hosts_file != nullptr) {
    if (!(applied & kMountNamespace)) ChildFail(status_fd, applied, kStepNetwork, EPERM);
    if (::mount(plan.hosts_file, "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
      ChildFail(status_fd, applied, kStepNetwork, errno);
    }
  }
  ::setsid();

  // Descriptors: 0 = /dev/null, 1-2 inherited (diagnostics), 3 = channel,
  // 4 = status (close-on-exec), 5 = go (close-on-exec); nothing else.
  const int enclave = Lift(plan.enclave_fd);
  const int status = Lift(plan.status_fd);
  const int go = Lift(plan.go_fd);
  if (enclave < 0 || status < 0 || go < 0) ChildFail(status_fd, applied, kStepDescriptors, errno);
  status_fd = status;
  if (::dup2(plan.devnull_fd, 0) < 0 || ::dup2(enclave, kChildEnclaveFd) < 0 ||
      ::dup3(status, kChildStatusFd, O_CLOEXEC) < 0 || ::dup3(go, kChildGoFd, O_CLOEXEC) < 0) {
    ChildFail(status_fd, applied, kStepDescriptors, errno);
  }
  status_fd = kChildStatusFd;
  if (::syscall(SYS_close_range, kChildGoFd + 1, ~0U, 0) != 0) {
    for (int fd = kChildGoFd + 1; fd < 65536; ++fd) ::close(fd);
  }

#if defined(AIRLOCK_SANITIZED_BUILD)
  // A sanitizer-built enclave reserves terabytes of address space for shadow
  // memory and cannot start under RLIMIT_AS; cgroups and the runtime's heap
  // limit still bound its memory.
  bool limits_ok = SetLimit(RLIMIT_CORE, 0) && SetLimit(RLIMIT_NOFILE, plan.open_files);
#else
  bool limits_ok = SetLimit(RLIMIT_AS, plan.memory_bytes) && SetLimit(RLIMIT_CORE, 0) &&
                   SetLimit(RLIMIT_NOFILE, plan.open_files);
#endif
  if (plan.cpu_seconds > 0) limits_ok = limits_ok && SetLimit(RLIMIT_CPU, plan.cpu_seconds);
  if (plan.processes > 0) limits_ok = limits_ok && SetLimit(RLIMIT_NPROC, plan.processes);
  if (limits_ok) applied |= kRlimits;

  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) applied |= kNoNewPrivs;

  // No capabilities survive exec, even for uid 0 inside a user namespace:
  // empty bounding and ambient sets, then empty effective/permitted/inheritable.
  bool caps_ok = true;
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) caps_ok = false;
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) caps_ok = false;
  if (caps_ok) applied |= kCapabilitiesDropped;

  char go_byte = 0;
  ssize_t got;
  do {
    got = ::read(kChildGoFd, &go_byte, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) ::_exit(126);  // the parent gave up on us
  ::close(kChildGoFd);

  // Last, so every step above could still use what the filter denies.
  if (plan.seccomp != nullptr &&
      ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan.seccomp, 0, 0) == 0) {
    applied |= kSeccomp;
  }
  const Report report{kReportMagic, applied, kStepNone, 0};
  if (!WriteAll(status_fd, &report, sizeof report)) ::_exit(126);
  if (plan.probe_only) ::_exit(0);
  ::execve(plan.executable, plan.argv, plan.envp);
  ChildFail(status_fd, applied, kStepExec, errno);
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void Reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// Reads one report; 0 bytes (end-of-file) returns false with *eof set.
Status ReadReport(int fd, Report* report, bool* eof) {
  *eof = false;
  size_t have = 0;
  char* p = reinterpret_cast<char*>(report);
  while (have < sizeof *report) {
    pollfd waiting{fd, POLLIN, 0};
    const int ready = ::poll(&waiting, 1, kStatusTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return Status::DeadlineExceeded("the enclave sandbox did not report in time");
    const ssize_t n = ::read(fd, p + have, sizeof *report - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal("reading the sandbox status failed: " + ErrnoText(errno));
    if (n == 0) {
      if (have != 0) return Status::Internal("the sandbox status report was cut short");
      *eof = true;
      return Status::Ok();
    }
    have += static_cast<size_t>(n);
  }
  if (report->magic != kReportMagic) return Status::Internal("malformed sandbox status report");
  return Status::Ok();
}

pid_t CloneWithFallback(unsigned long* flags, const ChildPlan& plan_template, ChildPlan* plan) {
  // Dropped one at a time, most often refused first.
  static const unsigned long kDropOrder[] = {CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC,
                                             CLONE_NEWUTS,  CLONE_NEWNS,  CLONE_NEWPID};
  size_t next_drop = 0;
  for (;;) {
    *plan = plan_template;
    plan->clone_flags = *flags;
    const long pid = ::syscall(SYS_clone, *flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (pid == 0) ChildMain(*plan);
    if (pid > 0) return static_cast<pid_t>(pid);
    const int err = errno;
    if (err != EPERM && err != EINVAL && err != ENOSPC && err != EUSERS) return -1;
    while (next_drop < std::size(kDropOrder) && !(*flags & kDropOrder[next_drop])) ++next_drop;
    if (next_drop == std::size(kDropOrder)) {
      errno = err;
      return -1;
    }
    *flags &= ~kDropOrder[next_drop++];
  }
}

}  // namespace

uint32_t MechanismBit(const std::string& name) {
  uint32_t bit = 1;
  for (const char* known : kMechanismNames) {
    if (name == known) return bit;
    bit <<= 1;
  }
  return 0;
}

Json MechanismsJson(uint32_t applied) {
  Json out = Json::object();
  uint32_t bit = 1;
  for (const char* name : kMechanismNames) {
    out[name] = (applied & bit) != 0;
    bit <<= 1;
  }
  return out;
}

std::string MissingMechanisms(uint32_t wanted, uint32_t applied) {
  std::string out;
  uint32_t bit = 1;
  for (const char* name : kMechanismNames) {
    if ((wanted & bit) && !(applied & bit)) out += (out.empty() ? "" : ", ") + std::string(name);
    bit <<= 1;
  }
  return out;
}

void KillAndReap(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

Result<SpawnResult> Spawn(const SpawnRequest& request) {
  if (!request.probe_only && request.executable.empty()) {
    return Status::FailedPrecondition("no airlock-enclave executable is known");
  }
  int status_pipe[2], go_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    return Status::ResourceExhausted("pipe failed: " + ErrnoText(errno));
  }
  Fd status_read(status_pipe[0]), status_write(status_pipe[1]);
  if (::pipe2(go_pipe, O_CLOEXEC) != 0) {
    return Status::ResourceExhausted("pipe failed: " + ErrnoText(errno));
  }
  Fd go_read(go_pipe[0]), go_write(go_pipe[1]);
  Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull.fd < 0) return Status::Unavailable("cannot open /dev/null: " + ErrnoText(errno));

  std::string executable = request.executable;
  std::string arg_fd = "--fd";
  std::string arg_n = std::to_string(kChildEnclaveFd);
  char* argv[] = {executable.data(), arg_fd.data(), arg_n.data(), nullptr};
  sock_fprog program{};
  if (request.seccomp != nullptr && !request.seccomp->empty()) {
    program.len = static_cast<unsigned short>(request.seccomp->size());
    program.filter = const_cast<sock_filter*>(request.seccomp->data());
  }

  ChildPlan plan_template{};
  plan_template.executable = executable.c_str();
  plan_template.argv = argv;
  static char* const kEmptyEnvironment[] = {nullptr};
  plan_template.envp = request.envp != nullptr ? request.envp : kEmptyEnvironment;
  plan_template.enclave_fd = request.probe_only ? devnull.fd : request.enclave_fd;
  plan_template.status_fd = status_write.fd;
  plan_template.go_fd = go_read.fd;
  plan_template.devnull_fd = devnull.fd;
  plan_template.uid = ::getuid();
  plan_template.gid = ::getgid();
  plan_template.probe_only = request.probe_only;
  plan_template.memory_bytes = static_cast<rlim_t>(request.memory_bytes);
  plan_template.cpu_seconds = static_cast<rlim_t>(request.cpu_seconds);
  plan_template.open_files = static_cast<rlim_t>(request.open_files);
  plan_template.processes = static_cast<rlim_t>(request.processes);
  plan_template.seccomp = program.len > 0 ? &program : nullptr;
  plan_template.loopback_up = request.loopback_up;
  plan_template.hosts_file = request.hosts_file.empty() ? nullptr : request.hosts_file.c_str();
  std::vector<ChildRootStep> root_steps;
  if (request.root != nullptr) {
    for (const RootStep& step : request.root->steps) {
      root_steps.push_back(
          {step.kind, step.target.c_str(), step.source.c_str(), step.source.size()});
    }
    plan_template.new_root = request.root->new_root.c_str();
    plan_template.root_steps = root_steps.data();
    plan_template.root_step_count = root_steps.size();
  }
  std::snprintf(plan_template.uid_map, sizeof plan_template.uid_map, "%u %u 1\n", plan_template.uid,
                plan_template.uid);
  std::snprintf(plan_template.gid_map, sizeof plan_template.gid_map, "%u %u 1\n", plan_template.gid,
                plan_template.gid);

  unsigned long flags =
      CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
  ChildPlan plan;
  const pid_t pid = CloneWithFallback(&flags, plan_template, &plan);
  if (pid < 0) return Status::ResourceExhausted("clone failed: " + ErrnoText(errno));
  status_write.Reset();
  go_read.Reset();

  SpawnResult result;
  result.pid = pid;
  if (request.before_exec) {
    auto extra = request.before_exec(pid);
    if (!extra.ok()) {
      KillAndReap(pid);
      return extra.status();
    }
    result.applied |= *extra;
  }
  const char go = 'g';
  if (!WriteAll(go_write.fd, &go, 1)) {
    KillAndReap(pid);
    return Status::Internal("the enclave sandbox exited during setup");
  }
  go_write.Reset();

  Report report{};
  bool eof = false;
  Status read = ReadReport(status_read.fd, &report, &eof);
  if (read.ok() && eof) read = Status::Internal("the enclave sandbox exited during setup");
  if (read.ok() && report.failed_step != kStepNone) {
    read = Status::Internal(std::string("enclave sandbox setup failed while ") +
                            StepName(report.failed_step) + ": " + ErrnoText(report.error));
  }
  if (!read.ok()) {
    KillAndReap(pid);
    return read;
  }
  result.applied |= report.applied;
  if (request.probe_only) {
    KillAndReap(pid);
    return result;
  }
  Report after{};
  read = ReadReport(status_read.fd, &after, &eof);
  if (read.ok() && !eof) {
    read = Status::FailedPrecondition("cannot start " + request.executable + ": " +
                                      std::string(StepName(after.failed_step)) +
                                      " failed: " + ErrnoText(after.error));
  }
  if (!read.ok()) {
    KillAndReap(pid);
    return read;
  }
  return result;
}

}  // namespace airlock::isolators::process
