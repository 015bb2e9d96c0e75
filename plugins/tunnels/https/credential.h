// Endpoint credentials: 32 random bytes shown to the requester once, of which
// the tunnel keeps only the SHA-256. Presented credentials are hashed and the
// digests compared in constant time.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"

namespace airlock::tunnels::https {

using CredentialHash = std::array<uint8_t, 32>;

// A freshly issued credential. Move-only; the token text is wiped on
// destruction. Never log `token` or put it in an error message.
class IssuedCredential {
 public:
  IssuedCredential(std::string token, const CredentialHash& hash)
      : token_(std::move(token)), hash_(hash) {}
  ~IssuedCredential();
  IssuedCredential(IssuedCredential&& other) noexcept;
  IssuedCredential& operator=(IssuedCredential&&) = delete;
  IssuedCredential(const IssuedCredential&) = delete;
  IssuedCredential& operator=(const IssuedCredential&) = delete;

  const std::string& token() const { return token_; }
  const CredentialHash& hash() const { return hash_; }

 private:
  std::string token_;
  CredentialHash hash_;
};

// 32 bytes from the OpenSSL CSPRNG, base64url without padding (43 characters).
// Unavailable if the random generator fails.
Result<IssuedCredential> IssueCredential();

CredentialHash HashCredential(std::string_view token);

// True when SHA-256(presented) equals `stored`; the comparison takes the same
// time wherever the digests differ.
bool CredentialMatches(std::string_view presented, const CredentialHash& stored);

// What a kernel replica keeps to open this request's endpoint again with the
// same credential ("sha256:" and the digest in hex): the hash, never the
// credential. Parse is InvalidArgument for anything else.
std::string CredentialVerifier(const CredentialHash& hash);
Result<CredentialHash> ParseCredentialVerifier(std::string_view verifier);

// Standard base64 with padding (used for binary values, too).
std::string Base64(std::string_view bytes);

}  // namespace airlock::tunnels::https
