// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, server side.
// The tunnel keeps only a verifier (salt, iteration count, StoredKey,
// ServerKey) per endpoint; the password exists only in the grant shown once.
// Channel binding is not offered (SCRAM-SHA-256 only, never -PLUS).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"

namespace airlock::tunnels::pgwire {

using Digest = std::array<uint8_t, 32>;

struct ScramVerifier {
  std::array<uint8_t, 16> salt{};
  uint32_t iterations = 0;
  Digest stored_key{};  // H(HMAC(SaltedPassword, "Client Key"))
  Digest server_key{};  // HMAC(SaltedPassword, "Server Key")
};

// A freshly issued password and its verifier. Move-only; the password text is
// wiped on destruction. Never log `password` or put it in an error message.
class IssuedPassword {
 public:
  IssuedPassword(std::string password, const ScramVerifier& verifier)
      : password_(std::move(password)), verifier_(verifier) {}
  ~IssuedPassword();
  IssuedPassword(IssuedPassword&& other) noexcept;
  IssuedPassword& operator=(IssuedPassword&&) = delete;
  IssuedPassword(const IssuedPassword&) = delete;
  IssuedPassword& operator=(const IssuedPassword&) = delete;

  const std::string& password() const { return password_; }
  const ScramVerifier& verifier() const { return verifier_; }

 private:
  std::string password_;
  ScramVerifier verifier_;
};

// 32 bytes from the OpenSSL CSPRNG as base64url (43 characters, no padding:
// no character needs quoting in a URL, a shell or a .pgpass line) and a
// verifier with a fresh 16-byte salt. Unavailable if the generator fails.
Result<IssuedPassword> IssuePassword(uint32_t iterations);

// The verifier of `password` for `salt` and `iterations`.
ScramVerifier MakeVerifier(std::string_view password, const std::array<uint8_t, 16>& salt,
                           uint32_t iterations);

// A verifier as PostgreSQL stores one in pg_authid, what a kernel replica
// keeps to open this request's endpoint again for the same password:
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (base64).
// Parse is InvalidArgument for anything else, or fewer than
// `min_iterations` iterations.
std::string VerifierText(const ScramVerifier& verifier);
Result<ScramVerifier> ParseVerifierText(std::string_view text, uint32_t min_iterations);

// One authentication exchange. Call OnClientFirst, then OnClientFinal.
class ScramExchange {
 public:
  explicit ScramExchange(const ScramVerifier& verifier) : verifier_(verifier) {}

  // client-first-message → server-first-message. InvalidArgument when the
  // message is malformed or asks for channel binding / an authzid.
  Result<std::string> OnClientFirst(std::string_view message);

  // client-final-message → server-final-message ("v=<signature>").
  // InvalidArgument when malformed; Unauthenticated when the proof is wrong
  // (checked in constant time).
  Result<std::string> OnClientFinal(std::string_view message);

 private:
  const ScramVerifier& verifier_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
};

std::string Base64Encode(std::string_view bytes);
// False on characters outside the standard alphabet or bad padding.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace airlock::tunnels::pgwire
