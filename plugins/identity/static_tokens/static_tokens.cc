#include "static_tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <chrono>
#include <string>
#include <string_view>

namespace airlock::identity::static_tokens {
namespace {

// Longer "tokens" are not ours; refusing them bounds the hashing work.
constexpr size_t kMaxTokenLength = 64 * 1024;

bool IsSpace(char c) {
  return c == ' ' || c == '\t';
}

// The token of an `Authorization: Bearer <token>` value (scheme compared
// case-insensitively, RFC 7235); empty when the value is not a bearer
// credential.
std::string_view BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || !IsSpace(value[kScheme.size()])) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = value[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kScheme[i]) return {};
  }
  std::string_view token = value.substr(kScheme.size());
  while (!token.empty() && IsSpace(token.front())) token.remove_prefix(1);
  while (!token.empty() && IsSpace(token.back())) token.remove_suffix(1);
  return token;
}

// Wipes the digest of the presented token when the check is over.
struct Digest {
  unsigned char bytes[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  ~Digest() { OPENSSL_cleanse(bytes, sizeof bytes); }
};

}  // namespace

Result<std::unique_ptr<StaticTokens>> StaticTokens::Create(const Json& config,
                                                           const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(StaticTokensConfig parsed, ParseConfig(config));
  Md sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!sha256) return Status::Internal("SHA-256 is unavailable");
  host.Info("loaded " + std::to_string(parsed.tokens.size()) + " token hash(es)");
  return std::unique_ptr<StaticTokens>(
      new StaticTokens(std::move(parsed), host, std::move(sha256)));
}

int64_t StaticTokens::NowMicros() const {
  const int64_t host_now = host_.NowMicros();
  if (host_now != 0) return host_now;
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<Principal> StaticTokens::Authenticate(const sdk::HttpRequestView& request) {
  const std::string_view header = request.Header("authorization");
  if (header.empty()) return Status::NotApplicable("no Authorization header");
  const std::string_view token = BearerToken(header);
  if (token.empty()) return Status::NotApplicable("not a bearer credential");
  if (token.size() > kMaxTokenLength) return Status::NotApplicable("bearer credential too long");

  Digest digest;
  if (EVP_Digest(token.data(), token.size(), digest.bytes, &digest.length, sha256_.get(),
                 nullptr) != 1 ||
      digest.length != kDigestSize) {
    return Status::Internal("SHA-256 is unavailable");
  }

  // Compare with every entry, always: the time taken does not depend on
  // which entry (if any) matched. Selection is branch-free.
  size_t matched = config_.tokens.size();
  for (size_t i = 0; i < config_.tokens.size(); ++i) {
    const size_t equal = static_cast<size_t>(
        CRYPTO_memcmp(digest.bytes, config_.tokens[i].digest.data(), kDigestSize) == 0);
    const size_t mask = 0 - equal;
    matched = (i & mask) | (matched & ~mask);
  }
  if (matched == config_.tokens.size()) return Status::NotApplicable("unknown bearer token");

  const TokenEntry& entry = config_.tokens[matched];
  if (entry.expires_at_micros && NowMicros() >= *entry.expires_at_micros) {
    return Status::Unauthenticated("token expired");
  }
  return entry.principal;
}

}  // namespace airlock::identity::static_tokens
