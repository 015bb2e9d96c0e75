// Test keys and signed JWTs made with OpenSSL 3, independently of the
// plugin's own code: RSA, EC (P-256, P-384) and Ed25519 keys, their public
// JWKs, and compact JWS tokens signed with any algorithm (including HS256
// for the key-confusion test). Failures throw std::runtime_error.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace airlock::test {

std::string B64Url(std::string_view bytes);

struct TestKey {
  std::string kid;
  std::string kty;  // RSA, EC, OKP
  std::string crv;  // P-256, P-384, Ed25519 or empty
  std::shared_ptr<EVP_PKEY> pkey;

  // The public JWK ({"kty","kid","use":"sig",...}); `alg` added when not empty.
  nlohmann::json PublicJwk(const std::string& alg = "") const;
  // The public key as SubjectPublicKeyInfo PEM (what a key-confusion attacker
  // would use as an HMAC secret).
  std::string PublicPem() const;
};

TestKey MakeRsaKey(const std::string& kid, int bits = 2048);
TestKey MakeEcKey(const std::string& kid, const std::string& crv);  // "P-256" or "P-384"
TestKey MakeEd25519Key(const std::string& kid);

// Signs "<b64(header)>.<b64(payload)>" with `key` per header["alg"]
// (RS*/PS256/ES*/EdDSA; ECDSA in JOSE r||s form).
std::string SignJwt(const TestKey& key, const nlohmann::json& header,
                    const nlohmann::json& payload);
// Same, but the payload segment is `payload_bytes` verbatim (for bad JSON).
std::string SignJwtRaw(const TestKey& key, const nlohmann::json& header,
                       std::string_view payload_bytes);
// HS256 over the token's signing input with `secret` as the HMAC key.
std::string SignHs256(std::string_view secret, const nlohmann::json& header,
                      const nlohmann::json& payload);

}  // namespace airlock::test
