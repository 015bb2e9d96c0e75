#include "kernel/api/identity_chain.h"

#include <cstring>

#include "kernel/plugin_host/plugin_instances.h"

namespace airlock {

bool IdentityProviderNeverBlocks(std::string_view name) {
  // Audited to hash or verify what the request carries and nothing else.
  return name == "static-tokens" || name == "mtls";
}

IdentityChain::IdentityChain(std::vector<std::unique_ptr<plugin_host::IdentityPlugin>> providers)
    : providers_(std::move(providers)) {
  answers_without_blocking_ = true;
  for (const auto& provider : providers_) {
    if (!IdentityProviderNeverBlocks(provider->manifest().name)) answers_without_blocking_ = false;
  }
}

IdentityChain::~IdentityChain() = default;

Result<Principal> IdentityChain::Authenticate(const HttpRequest& request) const {
  std::vector<airlock_type_header> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers) {
    headers.push_back({name.data(), name.size(), value.data(), value.size()});
  }
  airlock_type_http_request_view view;
  std::memset(&view, 0, sizeof(view));
  view.size = sizeof(view);
  view.method = request.method.data();
  view.method_length = request.method.size();
  view.target = request.target.data();
  view.target_length = request.target.size();
  view.headers = headers.data();
  view.header_count = headers.size();
  view.remote_address = request.remote_address.data();
  view.remote_address_length = request.remote_address.size();
  view.peer_certificate_pem = request.peer_certificate_pem.data();
  view.peer_certificate_pem_length = request.peer_certificate_pem.size();

  for (const auto& provider : providers_) {
    auto result = provider->Authenticate(view);
    if (result.ok()) {
      Principal principal = std::move(result).value();
      principal.provider = provider->manifest().name;
      request.MarkAuthenticated();
      return principal;
    }
    if (result.status().code() == StatusCode::kNotApplicable) continue;
    if (result.status().code() == StatusCode::kUnauthenticated) return result.status();
    // A provider that fails for another reason refuses: fail closed.
    return Status::Unauthenticated("identity provider " + provider->manifest().name +
                                   " failed: " + result.status().message());
  }
  return Status::Unauthenticated("no valid credential was presented");
}

}  // namespace airlock
