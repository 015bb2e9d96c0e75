// Resolution of secret references (`env:NAME`, `file:/abs/path`) into secret
// bytes. Enclave hosts call this for data-source credentials; the kernel calls
// it only for references in its own plugins' configuration.
#pragma once

#include <cstddef>
#include <string_view>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"

namespace airlock::plugin_host {

// Largest secret a `file:` reference may name.
inline constexpr size_t kMaxSecretFileBytes = 64 * 1024;

// Resolves a reference:
//   env:NAME        the value of environment variable NAME ([A-Za-z_][A-Za-z0-9_]*)
//   file:/abs/path  the contents of a regular file (symlinks are followed, as
//                   mounted secret volumes use them), at most kMaxSecretFileBytes,
//                   with one trailing newline ("\n" or "\r\n") removed.
// Errors: InvalidArgument for a malformed reference or an unknown scheme (the
// message names the scheme), NotFound for an unset variable or a missing file,
// FailedPrecondition for a file that is not a regular file, ResourceExhausted
// for a file over the cap. Messages name the reference, never the value.
Result<Secret> ResolveSecretReference(std::string_view reference);

}  // namespace airlock::plugin_host
