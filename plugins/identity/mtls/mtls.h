// The mtls identity provider: the client certificate chain the kernel took
// from the TLS handshake (which accepts any certificate, so that this
// provider decides and can say why) is verified against a configured CA
// bundle at the host's time, for TLS client use, and its subject is read
// from a SAN (URI, DNS, email) or the CN.
//
// Thread-safety: Authenticate may be called concurrently (the trust store
// and configuration are immutable after Create).
#pragma once

#include <openssl/x509_vfy.h>

#include <memory>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"

namespace airlock::identity::mtls {

// Refusal codes: every refusal is Unauthenticated("<code>: <detail>").
inline constexpr const char kMalformed[] = "mtls.malformed";
inline constexpr const char kExpired[] = "mtls.expired";
inline constexpr const char kNotYetValid[] = "mtls.not_yet_valid";
inline constexpr const char kUntrustedIssuer[] = "mtls.untrusted_issuer";
inline constexpr const char kWrongKeyUsage[] = "mtls.wrong_key_usage";
inline constexpr const char kNoSubject[] = "mtls.no_subject";
inline constexpr const char kInvalid[] = "mtls.invalid_certificate";

class Mtls : public sdk::IdentityProvider {
 public:
  // InvalidArgument naming the key, or when ca_file holds no certificate.
  static Result<std::unique_ptr<Mtls>> Create(const Json& config, const sdk::Host& host);

  // ok: the principal (attributes.certificate_sha256 = leaf fingerprint).
  // kNotApplicable: the connection presented no client certificate.
  // kUnauthenticated: "<code>: <detail>" with a code above.
  Result<Principal> Authenticate(const sdk::HttpRequestView& request) override;

  ~Mtls() override;

 private:
  struct StoreFree {
    void operator()(X509_STORE* store) const { X509_STORE_free(store); }
  };
  Mtls(MtlsConfig config, sdk::Host host, std::unique_ptr<X509_STORE, StoreFree> store)
      : config_(std::move(config)), host_(std::move(host)), store_(std::move(store)) {}

  int64_t NowSeconds() const;

  const MtlsConfig config_;
  const sdk::Host host_;
  const std::unique_ptr<X509_STORE, StoreFree> store_;
};

}  // namespace airlock::identity::mtls
