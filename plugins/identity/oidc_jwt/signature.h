// JWS signature verification (RFC 7515 / RFC 7518) through OpenSSL 3 EVP.
#pragma once

#include <openssl/evp.h>

#include <string_view>

#include "jwk.h"

namespace airlock::identity::oidc_jwt {

// True when `signature` is a valid `alg` signature of `signing_input`
// ("<header b64>.<payload b64>") under `key`. ECDSA signatures arrive in the
// JOSE form (fixed-size r||s) and are converted to DER for OpenSSL; RSASSA-PSS
// uses MGF1 with the same hash and a salt as long as the hash (RFC 7518 §3.5).
// The caller has checked that the key fits the algorithm (KeyMismatch).
bool VerifySignature(Algorithm alg, EVP_PKEY* key, std::string_view signing_input,
                     std::string_view signature);

// The DER ECDSA-Sig-Value for a JOSE r||s signature of `component_size`-byte
// halves; empty when the length is wrong. Exposed for tests.
std::string JoseToDerEcdsa(std::string_view jose, size_t component_size);
// The JOSE r||s form of a DER ECDSA signature; empty on malformed input.
std::string DerToJoseEcdsa(std::string_view der, size_t component_size);

}  // namespace airlock::identity::oidc_jwt
