// The enclave's private root file system: what it contains and the steps that
// build it, planned in the parent so the cloned child only replays them.
//
// The root is a small tmpfs holding mount points and a few generated /etc
// files; everything else is a read-only bind mount of exactly:
//   - the airlock-enclave executable and the system library directories
//     (/usr/lib, /usr/lib64 and the /lib* links of a merged-/usr system);
//   - the TLS trust store (/etc/ssl, /usr/share/ca-certificates), the dynamic
//     loader cache and the time zone;
//   - the request's read paths (connector plugins, data roots, CA files,
//     `file:` secrets) at their own absolute paths;
//   - /dev/null, /dev/zero, /dev/random and /dev/urandom;
// plus a private /proc (the enclave's PID namespace only) and a small
// writable /tmp. /etc/hosts, /etc/passwd, /etc/group and /etc/nsswitch.conf
// are generated: only the enclave's own user, and names resolve from
// /etc/hosts alone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::isolators::process {

struct RootStep {
  enum Kind : int {
    kMkdir,    // target: a directory in the new root
    kTouch,    // target: an empty file (a mount point for a file)
    kBind,     // source bound read-only (nosuid, nodev) at target
    kBindDev,  // a device node bound at target (read-only mount, devices still usable)
    kSymlink,  // target -> source
    kTmpfs,    // a tmpfs at target, source = mount options
    kProc,     // a proc instance of the child's PID namespace at target
    kWrite,    // target created with `source` as its contents
  };
  Kind kind;
  std::string target;  // absolute, already prefixed with the new root
  std::string source;
};

struct RootPlan {
  std::string new_root;  // a host directory; a tmpfs is mounted over it in the child
  std::vector<RootStep> steps;
  std::vector<std::string> skipped;  // read paths not bound, with the reason (for logs)
};

struct RootInputs {
  std::string new_root;                 // empty directory on the host (created by the caller)
  std::string executable;               // airlock-enclave
  std::vector<std::string> read_paths;  // absolute paths the enclave must read
  std::string hosts_text;               // /etc/hosts; empty: localhost only
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t tmp_bytes = int64_t{64} << 20;  // size of /tmp
};

// InvalidArgument for a read path that is not absolute and normal, or that
// would expose the host (/, /proc, /sys, /dev). Read paths that do not exist
// are skipped (listed in `skipped`): the connector reports its own error.
Result<RootPlan> PlanPrivateRoot(const RootInputs& inputs);

}  // namespace airlock::isolators::process
