// The static-tokens identity provider: `Authorization: Bearer <token>` is
// hashed (SHA-256) and compared, in constant time, with every configured
// hash. Meant for service accounts and agents in small deployments; tokens
// are issued out of band and rotated by editing the configuration.
//
// Thread-safety: Authenticate may be called concurrently (the instance is
// immutable after Create).
#pragma once

#include <memory>

#include <openssl/evp.h>

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
  struct MdFree {
    void operator()(EVP_MD* md) const { EVP_MD_free(md); }
  };
  using Md = std::unique_ptr<EVP_MD, MdFree>;

  StaticTokens(StaticTokensConfig config, sdk::Host host, Md sha256)
      : config_(std::move(config)), host_(std::move(host)), sha256_(std::move(sha256)) {}

  int64_t NowMicros() const;

  const StaticTokensConfig config_;
  const sdk::Host host_;
  // Fetched once: an EVP_sha256() digest is looked up in the provider store
  // (a locked lookup) on every use.
  const Md sha256_;
};

}  // namespace airlock::identity::static_tokens
