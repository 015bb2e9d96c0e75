// The static-tokens identity provider: `Authorization: Bearer <token>` is
// hashed (SHA-256) and compared, in constant time, with every configured
// hash. Meant for service accounts and agents in small deployments; tokens
// are issued out of band and rotated by editing the configuration.
//
// Thread-safety: Authenticate may be called concurrently (the instance is
// immutable after Create).
#pragma once

#include <memory>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"

namespace airlock::identity::static_tokens {

class StaticTokens : public sdk::IdentityProvider {
 public:
  // InvalidArgument naming the key when the configuration is not valid.
  static Result<std::unique_ptr<StaticTokens>> Create(const Json& config, const sdk::Host& host);

  // ok: the configured principal of the matching token.
  // kNotApplicable: no Authorization header, another scheme, or a token no
  //   entry knows (another provider, e.g. JWT, may own it).
  // kUnauthenticated("token expired"): the token matched an expired entry.
  // Neither the token nor its hash ever appears in a message or a log line.
  Result<Principal> Authenticate(const sdk::HttpRequestView& request) override;

 private:
  StaticTokens(StaticTokensConfig config, sdk::Host host)
      : config_(std::move(config)), host_(std::move(host)) {}

  int64_t NowMicros() const;

  const StaticTokensConfig config_;
  const sdk::Host host_;
};

}  // namespace airlock::identity::static_tokens
