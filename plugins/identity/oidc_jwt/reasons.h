// Refusal reasons. Every refusal is Unauthenticated with a message that
// starts with one of these codes and a colon ("jwt.expired: ..."), so the
// kernel's 401 body and audit record can be told apart by machine. The text
// after the colon is for people and never quotes the token.
#pragma once

#include <string>

#include "airlock/cpp/status.hpp"

namespace airlock::identity::oidc_jwt {

inline constexpr const char kMalformed[] = "jwt.malformed";
inline constexpr const char kAlgNone[] = "jwt.alg_none";
inline constexpr const char kAlgMismatch[] = "jwt.alg_mismatch";
inline constexpr const char kUnknownKid[] = "jwt.unknown_kid";
inline constexpr const char kBadSignature[] = "jwt.bad_signature";
inline constexpr const char kExpired[] = "jwt.expired";
inline constexpr const char kNotYetValid[] = "jwt.not_yet_valid";
inline constexpr const char kWrongIssuer[] = "jwt.wrong_issuer";
inline constexpr const char kWrongAudience[] = "jwt.wrong_audience";
inline constexpr const char kMissingClaim[] = "jwt.missing_claim";
inline constexpr const char kBadClaim[] = "jwt.bad_claim";
inline constexpr const char kJwksUnavailable[] = "jwt.jwks_unavailable";

inline Status Refuse(const char* code, const std::string& detail) {
  return Status::Unauthenticated(std::string(code) + ": " + detail);
}

}  // namespace airlock::identity::oidc_jwt
