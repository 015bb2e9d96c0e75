// Reading a kubeconfig file (YAML, as kubectl writes it) for the isolator's
// `cluster: {"kubeconfig": PATH, "context": NAME}`: the context's cluster
// (server, CA as a file or inline data) and user (a token, a token file or a
// client certificate, as files or inline data). What the isolator cannot do
// safely or at all is refused by name: insecure-skip-tls-verify, exec and
// auth-provider credential plugins, basic authentication, proxies.
#pragma once

#include <string>

#include "airlock/cpp/status.hpp"
#include "config.h"

namespace airlock::isolators::kubernetes {

// `context` empty: the file's current-context. Relative paths in the file
// are taken relative to the file's directory, as kubectl does.
Result<ClusterAccess> ReadKubeconfig(const std::string& path, const std::string& context);

}  // namespace airlock::isolators::kubernetes
