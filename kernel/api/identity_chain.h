// Authenticates an HTTP request against the configured identity providers,
// in order: the first that vouches wins, the first that refuses ends the
// search, providers that find no credential of their kind pass it on.
#pragma once

#include <memory>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/api/http_types.h"

namespace airlock {

namespace plugin_host {
class IdentityPlugin;
}  // namespace plugin_host

class IdentityChain {
 public:
  explicit IdentityChain(std::vector<std::unique_ptr<plugin_host::IdentityPlugin>> providers);
  ~IdentityChain();

  // ok: the principal (with `provider` set). kUnauthenticated: refused or no
  // credential at all, with the reason.
  Result<Principal> Authenticate(const HttpRequest& request) const;

  size_t size() const { return providers_.size(); }

 private:
  std::vector<std::unique_ptr<plugin_host::IdentityPlugin>> providers_;
};

}  // namespace airlock
