// JSON Web Keys (RFC 7517) turned into OpenSSL public keys, and the JWS
// algorithms (RFC 7518) this provider verifies. Only asymmetric algorithms
// exist here: a shared-secret (HMAC) algorithm is never accepted, which
// rules out the key-confusion attack where a public key is used as an HMAC
// secret.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::identity::oidc_jwt {

enum class Algorithm { kRS256, kRS384, kRS512, kPS256, kES256, kES384, kEdDSA };

std::optional<Algorithm> ParseAlgorithm(std::string_view name);
const char* AlgorithmName(Algorithm alg);
// Every algorithm this provider implements, in a stable order.
std::vector<Algorithm> SupportedAlgorithms();
// True for JOSE names of symmetric (HMAC) algorithms: HS256, HS384, HS512.
bool IsHmacAlgorithmName(std::string_view name);

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

// One usable verification key.
struct Jwk {
  std::string kid;               // may be empty
  std::string kty;               // RSA, EC or OKP
  std::string crv;               // P-256, P-384 (EC), Ed25519 (OKP); empty for RSA
  std::string alg;               // the key's declared algorithm, or empty
  std::string use;               // the key's declared use, or empty
  bool for_verification = true;  // `use` and `key_ops` allow verifying signatures
  std::shared_ptr<EVP_PKEY> key;
};

// An immutable set of keys, shared by readers while a refresh builds the next.
struct KeySet {
  std::vector<Jwk> keys;
  // One line per key that was left out (symmetric, private, unsupported,
  // weak), naming the key by kid and the reason; never key material.
  std::vector<std::string> skipped;

  const Jwk* FindByKid(std::string_view kid) const;
};

// Parses a JWKS document ({"keys":[...]}). Keys this provider cannot use are
// skipped (listed in `skipped`); a document that is not a JWKS, or holds
// more than `max_keys` entries, is InvalidArgument.
Result<KeySet> ParseJwks(std::string_view text, size_t max_keys);

// Empty when `key` may verify `alg`; otherwise why not (kty, crv, alg or use
// disagree with the token header).
std::string KeyMismatch(const Jwk& key, Algorithm alg);

}  // namespace airlock::identity::oidc_jwt
