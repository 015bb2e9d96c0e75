// The oidc-jwt identity provider: `Authorization: Bearer <JWT>` (a compact
// JWS, RFC 7515/7519) verified against the issuer's published keys (JWKS),
// then checked for issuer, audience and validity times, and mapped to a
// principal through configurable claims.
//
// Thread-safety: Authenticate may be called concurrently; the configuration
// is immutable and the key cache serialises its own refreshes.
#pragma once

#include <memory>
#include <string_view>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"
#include "jwks_cache.h"

namespace airlock::identity::oidc_jwt {

class OidcJwt : public sdk::IdentityProvider {
 public:
  // InvalidArgument naming the key when the configuration is not valid, or
  // when a jwks_file cannot be read or holds no usable key. A jwks_url that
  // cannot be reached at start is only logged: keys are fetched again when a
  // token needs them.
  static Result<std::unique_ptr<OidcJwt>> Create(const Json& config, const sdk::Host& host);

  // ok: the mapped principal (attributes.issuer set).
  // kNotApplicable: no Authorization header, another scheme, or a bearer
  //   token with fewer than two dots (not a JWT: another provider may own it).
  // kUnauthenticated: "<code>: <detail>" with a code from reasons.h.
  Result<Principal> Authenticate(const sdk::HttpRequestView& request) override;

  // Verifies a compact JWT and maps it; Authenticate minus the header work.
  Result<Principal> VerifyToken(std::string_view token);

 private:
  OidcJwt(OidcJwtConfig config, sdk::Host host, std::unique_ptr<JwksSource> source);

  int64_t NowMicros() const;

  const OidcJwtConfig config_;
  const sdk::Host host_;
  JwksCache cache_;
};

}  // namespace airlock::identity::oidc_jwt
