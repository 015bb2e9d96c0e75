// Configuration of the static-tokens identity provider: a list of token
// hashes, each bound to the principal it authenticates. Raw tokens are never
// configured (an entry with a "token" member is refused), so the
// configuration file holds nothing that can be replayed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::identity::static_tokens {

inline constexpr size_t kDigestSize = 32;  // SHA-256

struct TokenEntry {
  std::array<unsigned char, kDigestSize> digest{};  // SHA-256 of the token
  Principal principal;                              // subject, kind, groups, tenant
  std::optional<int64_t> expires_at_micros;         // Unix microseconds; none = never
};

struct StaticTokensConfig {
  std::vector<TokenEntry> tokens;
};

// Parses and validates the whole configuration:
//   {"tokens": [{"sha256": "<64 hex>", "subject": "...",
//                "kind": "human|service|agent" (unnamed: the kernel decides),
//                "groups": [...], "tenant": "...",
//                "expires_at": "<RFC 3339 with offset>"}]}
// Errors are InvalidArgument naming the key ("tokens[2].sha256 must be ...").
// Messages never quote a token or a hash.
Result<StaticTokensConfig> ParseConfig(const Json& config);

}  // namespace airlock::identity::static_tokens
