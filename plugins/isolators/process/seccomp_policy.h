// The enclave's seccomp policy: an allow-list of exactly the system calls
// airlock-enclave needs (SQLite, dlopen'ed connectors with their client
// libraries and TLS, threads, poll, loopback sockets with SCM_RIGHTS,
// and the AddressSanitizer runtime of sanitized builds).
//
// Outcomes, in order of precedence:
//   - foreign architectures (e.g. the 32-bit x86 ABI on x86_64): the process is killed;
//   - a handful of calls only an exploit makes (kexec_*, *_module, reboot,
//     iopl, ioperm): the process is killed;
//   - calls the enclave must never make (ptrace, mount, unshare, setns, bpf, …),
//     `clone` with a CLONE_NEW* flag, mmap/mprotect asking for memory that is
//     writable and executable at once, personality changes: EPERM;
//   - socket()/socketpair() of a family other than AF_UNIX/AF_INET/AF_INET6: EAFNOSUPPORT;
//   - everything not listed (including clone3, whose flags live in memory the
//     filter cannot read): ENOSYS, so libraries that probe newer calls fall back
//     as they would on an older kernel.
// See docs/enclaves.md for the rationale.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::isolators::process {

// The policy as a classic BPF program for the native architecture. It is
// only exported (never loaded here): the sandboxed child loads it with
// prctl(PR_SET_SECCOMP) just before exec.
Result<std::vector<sock_filter>> BuildSeccompProgram();

}  // namespace airlock::isolators::process
