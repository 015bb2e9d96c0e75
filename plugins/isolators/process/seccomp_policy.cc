#include "seccomp_policy.h"

#include <fcntl.h>
#include <linux/prctl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <system_error>

namespace airlock::isolators::process {
namespace {

// Allowed without conditions. Every entry was seen in `strace -f` traces of
// airlock-enclave in the enclave, cross-source (PostgreSQL over TLS, MongoDB,
// CSV) and isolator suites under AddressSanitizer, or is marked with the code
// path that needs it but that those runs did not reach.
constexpr const char* kAllowed[] = {
    // Files: the executable and its libraries, connector plugins (dlopen), CSV/JSON
    // Lines sources (openat2 with RESOLVE_BENEATH), TLS trust stores.
    "read",
    "write",
    "pread64",
    "open",
    "openat",
    "openat2",
    "close",
    "lseek",
    "newfstatat",
    "access",
    "readlink",
    "getdents64",
    "fcntl",
    "pipe2",
    "ftruncate",
    "unlink",
    // Variants of the above other glibc entry points or architectures use.
    "fstat",
    "stat",
    "lstat",
    "statx",
    "faccessat",
    "faccessat2",
    "readlinkat",
    "unlinkat",
    "close_range",
    // SQLite spilling a large sort or temporary table to a file in /tmp.
    "pwrite64",
    "fsync",
    "fdatasync",
    // Memory (mmap and mprotect are conditional, below); mremap: glibc realloc
    // of large blocks in builds without the sanitizer allocator.
    "munmap",
    "madvise",
    "brk",
    "mremap",
    // Threads, scheduling, exit.
    "futex",
    "set_robust_list",
    "rseq",
    "set_tid_address",
    "gettid",
    "getpid",
    "tgkill",
    "sched_yield",
    "sched_getaffinity",
    "exit",
    "exit_group",
    "arch_prctl",
    // Signals (restart_syscall and rt_sigreturn are entered by the kernel's
    // signal delivery, not by a call site).
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "restart_syscall",
    // Time (vDSO fallbacks), randomness, identity, limits, host facts.
    "clock_gettime",
    "gettimeofday",
    "time",
    "getrandom",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "uname",
    "sysinfo",
    "prlimit64",
    "getrlimit",
    "setrlimit",
    // Waiting for descriptors (ppoll: what poll is on architectures without it).
    "poll",
    "ppoll",
    "eventfd2",
    "eventfd",
    // Sockets (socket and socketpair are conditional, below): the control channel, the
    // egress forwarder on loopback, descriptors passed with SCM_RIGHTS.
    "connect",
    "bind",
    "listen",
    "accept4",
    "getsockname",
    "setsockopt",
    "getsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    // The sanitizer runtime's error report may start a symbolizer (fork, dup2, exec, wait).
    "dup",
    "dup2",
    "dup3",
    "wait4",
    // The filter is loaded before the exec of airlock-enclave itself.
    "execve",
};

// Never needed; EPERM tells a caller plainly that it is not allowed.
constexpr const char* kRefused[] = {"ptrace",
                                    "process_vm_readv",
                                    "process_vm_writev",
                                    "mount",
                                    "umount2",
                                    "pivot_root",
                                    "chroot",
                                    "unshare",
                                    "setns",
                                    "bpf",
                                    "perf_event_open",
                                    "keyctl",
                                    "add_key",
                                    "request_key",
                                    "userfaultfd",
                                    "io_uring_setup",
                                    "io_uring_enter",
                                    "io_uring_register",
                                    "fsopen",
                                    "fsmount",
                                    "fspick",
                                    "move_mount",
                                    "open_tree",
                                    "mount_setattr",
                                    "name_to_handle_at",
                                    "open_by_handle_at",
                                    "fanotify_init",
                                    "kcmp",
                                    "settimeofday",
                                    "clock_settime",
                                    "clock_adjtime",
                                    "adjtimex",
                                    "acct",
                                    "quotactl",
                                    "swapon",
                                    "swapoff",
                                    "lookup_dcookie",
                                    "memfd_secret",
                                    "pkey_mprotect",
                                    "setuid",
                                    "setgid",
                                    "setreuid",
                                    "setregid",
                                    "setresuid",
                                    "setresgid",
                                    "setgroups",
                                    "setfsuid",
                                    "setfsgid",
                                    "capset",
                                    "chown",
                                    "fchownat",
                                    "lchown",
                                    "mknod",
                                    "mknodat",
                                    "sethostname",
                                    "setdomainname",
                                    "vhangup",
                                    "syslog"};

// Only an exploit calls these from an unprivileged sandbox: end the process.
constexpr const char* kFatal[] = {"kexec_load",    "kexec_file_load", "init_module", "finit_module",
                                  "delete_module", "reboot",          "iopl",        "ioperm"};

// ioctl requests: isatty() (TCGETS, traced) and descriptor-local requests
// that change nothing outside the descriptor.
constexpr unsigned long kIoctls[] = {TCGETS, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX};

// prctl options: none was traced; thread names and read-only queries (the
// sanitizer runtime asks PR_GET_DUMPABLE on some report paths) are harmless.
constexpr int kPrctlOptions[] = {PR_SET_NAME,         PR_GET_NAME,    PR_GET_DUMPABLE,
                                 PR_GET_NO_NEW_PRIVS, PR_GET_SECCOMP, PR_CAPBSET_READ};

constexpr uint64_t kNamespaceFlags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
                                     CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;

using Context = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

Status Add(scmp_filter_ctx ctx, uint32_t action, int nr, const std::string& what,
           unsigned count = 0, scmp_arg_cmp cmp = {}) {
  const int rc =
      count == 0 ? seccomp_rule_add(ctx, action, nr, 0) : seccomp_rule_add(ctx, action, nr, 1, cmp);
  if (rc != 0) {
    return Status::Internal("seccomp rule for " + what +
                            " failed: " + std::error_code(-rc, std::generic_category()).message());
  }
  return Status::Ok();
}

// Rules for a syscall the native architecture may not have (e.g. `open` on
// arm64) are skipped.
Status AddByName(scmp_filter_ctx ctx, uint32_t action, const char* name) {
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return Status::Ok();
  return Add(ctx, action, nr, name);
}

}  // namespace

Result<std::vector<sock_filter>> BuildSeccompProgram() {
  Context ctx(seccomp_init(SCMP_ACT_ERRNO(ENOSYS)), seccomp_release);
  if (ctx == nullptr) return Status::Unavailable("seccomp_init failed");
  scmp_filter_ctx c = ctx.get();
  // Other ABIs of the native architecture (x32, 32-bit x86) are not added,
  // so libseccomp kills on them.
  if (seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0) {
    return Status::Internal("seccomp: cannot set the bad-architecture action");
  }
  for (const char* name : kAllowed) AIRLOCK_RETURN_IF_ERROR(AddByName(c, SCMP_ACT_ALLOW, name));
  for (const char* name : kRefused) {
    AIRLOCK_RETURN_IF_ERROR(AddByName(c, SCMP_ACT_ERRNO(EPERM), name));
  }
  for (const char* name : kFatal) {
    AIRLOCK_RETURN_IF_ERROR(AddByName(c, SCMP_ACT_KILL_PROCESS, name));
  }

  // clone: threads and plain forks only. Each namespace flag is refused by
  // its own rule (libseccomp compares one value per argument per rule).
  AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ALLOW, SCMP_SYS(clone), "clone", 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0)));
  for (uint64_t flag = 1; flag != 0; flag <<= 1) {
    if (!(kNamespaceFlags & flag)) continue;
    AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), "clone", 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)));
  }
  // clone3 keeps its flags in memory the filter cannot read. It is left to the
  // default (ENOSYS), on which glibc falls back to clone.

  // mmap/mprotect: never writable and executable at once. (A mapping made
  // writable, filled, then made executable by a second call cannot be told
  // apart from the dynamic loader's own work; see docs/enclaves.md.)
  constexpr uint64_t kWX = PROT_WRITE | PROT_EXEC;
  for (int nr : {SCMP_SYS(mmap), SCMP_SYS(mprotect)}) {
    const std::string what = nr == SCMP_SYS(mmap) ? "mmap" : "mprotect";
    AIRLOCK_RETURN_IF_ERROR(
        Add(c, SCMP_ACT_ALLOW, nr, what, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)));
    AIRLOCK_RETURN_IF_ERROR(
        Add(c, SCMP_ACT_ALLOW, nr, what, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE, 0)));
    AIRLOCK_RETURN_IF_ERROR(
        Add(c, SCMP_ACT_ERRNO(EPERM), nr, what, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, kWX, kWX)));
  }

  // Sockets: local channels and loopback TCP only; the network namespace
  // holds nothing else anyway, but no netlink, packet or other family.
  for (int family : {AF_UNIX, AF_INET, AF_INET6}) {
    AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ALLOW, SCMP_SYS(socket), "socket", 1,
                                SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(family))));
  }
  for (int family = 0; family < AF_MAX; ++family) {
    if (family == AF_UNIX || family == AF_INET || family == AF_INET6) continue;
    AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), "socket", 1,
                                SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(family))));
  }
  AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), "socketpair", 1,
                              SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(AF_UNIX))));
  AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), "socketpair",
                              1, SCMP_A0(SCMP_CMP_NE, static_cast<uint64_t>(AF_UNIX))));

  // ioctl's request is an unsigned int in the kernel: compare the low 32 bits.
  for (unsigned long request : kIoctls) {
    AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), "ioctl", 1,
                                SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, request)));
  }
  for (int option : kPrctlOptions) {
    AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ALLOW, SCMP_SYS(prctl), "prctl", 1,
                                SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(option))));
  }
  // personality(0xffffffff) only reads the persona (the sanitizer runtime
  // does); any change is refused.
  AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ALLOW, SCMP_SYS(personality), "personality", 1,
                              SCMP_A0(SCMP_CMP_EQ, 0xffffffffULL)));
  AIRLOCK_RETURN_IF_ERROR(Add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), "personality", 1,
                              SCMP_A0(SCMP_CMP_NE, 0xffffffffULL)));

  char name[] = "airlock-seccomp";
  const int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) {
    return Status::Unavailable("memfd_create failed: " +
                               std::error_code(errno, std::generic_category()).message());
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (seccomp_export_bpf(c, fd) != 0)
    return Status::Internal("exporting the seccomp program failed");
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return Status::Internal("the exported seccomp program is malformed");
  }
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(fd, program.data(), static_cast<size_t>(size), 0) != size) {
    return Status::Internal("reading the exported seccomp program failed");
  }
  if (program.size() > BPF_MAXINSNS) {
    return Status::Internal("the seccomp program is longer than the kernel accepts");
  }
  return program;
}

}  // namespace airlock::isolators::process
