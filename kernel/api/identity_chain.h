// Authenticates an HTTP request against the configured identity providers,
// in order: the first that vouches wins, the first that refuses ends the
// search, providers that find no credential of their kind pass it on.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/api/http_types.h"

namespace airlock {

namespace plugin_host {
class IdentityPlugin;
}  // namespace plugin_host

// Whether the identity provider registered under `name` never blocks in
// Authenticate (see IdentityChain::answers_without_blocking).
bool IdentityProviderNeverBlocks(std::string_view name);

class IdentityChain {
 public:
  explicit IdentityChain(std::vector<std::unique_ptr<plugin_host::IdentityPlugin>> providers);
  ~IdentityChain();

  // ok: the principal (with `provider` set), and the request's connection is
  // marked authenticated (HttpRequest::MarkAuthenticated). kUnauthenticated:
  // refused or no credential at all, with the reason.
  Result<Principal> Authenticate(const HttpRequest& request) const;

  size_t size() const { return providers_.size(); }

  // True when every provider is known to authenticate from the request alone
  // (hashing, signature checks: no network, no file, no waiting), so that
  // Authenticate may run on an HTTP I/O thread. Known by manifest name:
  // static-tokens and mtls. Any other provider (oidc-jwt may fetch its JWKS)
  // makes this false.
  bool answers_without_blocking() const { return answers_without_blocking_; }

 private:
  std::vector<std::unique_ptr<plugin_host::IdentityPlugin>> providers_;
  bool answers_without_blocking_ = false;
};

}  // namespace airlock
