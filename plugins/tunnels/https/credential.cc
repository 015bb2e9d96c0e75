#include "credential.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

namespace airlock::tunnels::https {
namespace {

constexpr size_t kCredentialBytes = 32;

std::string Base64Url(const uint8_t* data, size_t length) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((length * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= length; i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (length - i == 1) {
    const uint32_t v = uint32_t{data[i]} << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (length - i == 2) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

}  // namespace

IssuedCredential::~IssuedCredential() {
  if (!token_.empty()) OPENSSL_cleanse(token_.data(), token_.size());
}

IssuedCredential::IssuedCredential(IssuedCredential&& other) noexcept
    : token_(std::move(other.token_)), hash_(other.hash_) {
  // A moved-from std::string may keep its bytes (small-string buffer): wipe them.
  if (!other.token_.empty()) OPENSSL_cleanse(other.token_.data(), other.token_.size());
  other.token_.clear();
}

Result<IssuedCredential> IssueCredential() {
  uint8_t raw[kCredentialBytes];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    return Status::Unavailable("the random generator failed; no credential issued");
  }
  std::string token = Base64Url(raw, sizeof raw);
  OPENSSL_cleanse(raw, sizeof raw);
  const CredentialHash hash = HashCredential(token);
  return IssuedCredential(std::move(token), hash);
}

CredentialHash HashCredential(std::string_view token) {
  CredentialHash digest{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  return digest;
}

bool CredentialMatches(std::string_view presented, const CredentialHash& stored) {
  // Hashing first makes the comparison independent of the presented length, too.
  CredentialHash digest = HashCredential(presented);
  const bool same = CRYPTO_memcmp(digest.data(), stored.data(), digest.size()) == 0;
  OPENSSL_cleanse(digest.data(), digest.size());
  return same;
}

std::string CredentialVerifier(const CredentialHash& hash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (uint8_t b : hash) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

Result<CredentialHash> ParseCredentialVerifier(std::string_view verifier) {
  constexpr std::string_view kPrefix = "sha256:";
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  CredentialHash hash{};
  if (verifier.size() != kPrefix.size() + 2 * hash.size() || !verifier.starts_with(kPrefix)) {
    return Status::InvalidArgument("endpoint spec.verifier must be sha256: and 64 hex digits");
  }
  for (size_t i = 0; i < hash.size(); ++i) {
    const int hi = nibble(verifier[kPrefix.size() + 2 * i]);
    const int lo = nibble(verifier[kPrefix.size() + 2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("endpoint spec.verifier must be sha256: and 64 hex digits");
    }
    hash[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return hash;
}

std::string Base64(std::string_view bytes) {
  // Encoded in slices whose sizes fit EVP_EncodeBlock's int (a multiple of 3
  // bytes, so the slices concatenate without inner padding).
  constexpr size_t kSlice = 3 * 4096;
  std::string out;
  out.reserve(4 * ((bytes.size() + 2) / 3));
  unsigned char encoded[4 * (kSlice / 3) + 1];
  for (size_t pos = 0; pos < bytes.size(); pos += kSlice) {
    const size_t n = std::min(kSlice, bytes.size() - pos);
    const int written = EVP_EncodeBlock(
        encoded, reinterpret_cast<const unsigned char*>(bytes.data() + pos), static_cast<int>(n));
    out.append(reinterpret_cast<const char*>(encoded), static_cast<size_t>(written));
  }
  return out;
}

}  // namespace airlock::tunnels::https
