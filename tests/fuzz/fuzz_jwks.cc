// JWKS documents as the oidc-jwt identity provider reads them from its
// jwks_file or jwks_url (ParseJwks: every key turned into an OpenSSL public
// key or skipped with a reason), then every parsed key checked against every
// algorithm (KeyMismatch) and looked up by its kid.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "plugins/identity/oidc_jwt/jwk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace jwt = airlock::identity::oidc_jwt;
  auto set = jwt::ParseJwks(std::string_view(reinterpret_cast<const char*>(data), size),
                            /*max_keys=*/64);
  if (!set.ok()) return 0;
  for (const jwt::Jwk& key : set->keys) {
    if (!key.key) {
      std::fprintf(stderr, "jwks: key '%s' kept without a public key\n", key.kid.c_str());
      std::abort();
    }
    for (jwt::Algorithm alg : jwt::SupportedAlgorithms()) (void)jwt::KeyMismatch(key, alg);
    if (set->FindByKid(key.kid) == nullptr && !key.kid.empty()) {
      std::fprintf(stderr, "jwks: kid '%s' not found again\n", key.kid.c_str());
      std::abort();
    }
  }
  return 0;
}
