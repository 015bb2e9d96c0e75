// Which secret references the kernel itself may resolve.
//
// Data-source credentials are resolved only inside enclaves (trust boundary
// 1): connector configurations never reach the kernel's resolver. The kernel
// resolves only its own operational credentials: the references written in
// the configuration of the plugins it runs in-process (identity, policy,
// tunnel, isolator; e.g. a policy service's bearer token). The state store's
// connection string (state.dsn_secret) is the kernel's own too: the
// composition root resolves it with ResolveSecretReference when it opens the
// store (kernel/main/state_backend.cc), and it never reaches a plugin.
//
// Thread-safety: all members may be called from any thread.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"

namespace airlock::plugin_host {

class KernelSecrets {
 public:
  // Allows every string of `plugin_config` (at any depth) that is a secret
  // reference (`env:…`, `file:…`). Call for kernel-side plugins only.
  void AllowReferencesOf(const nlohmann::json& plugin_config);

  // ResolveSecretReference for an allowed reference; PermissionDenied (the
  // message names neither the reference's value nor a secret) otherwise.
  Result<Secret> Resolve(std::string_view reference) const;

 private:
  mutable std::mutex mutex_;
  std::set<std::string, std::less<>> allowed_;  // GUARDED_BY(mutex_)
};

}  // namespace airlock::plugin_host
