#include "config.h"

#include <string>
#include <string_view>

#include "airlock/cpp/config_read.hpp"
#include "airlock/cpp/scope.hpp"

namespace airlock::identity::static_tokens {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool DecodeDigest(std::string_view hex, std::array<unsigned char, kDigestSize>* out) {
  if (hex.size() != 2 * kDigestSize) return false;
  for (size_t i = 0; i < kDigestSize; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

Status ParseEntry(const Json& j, const std::string& where, TokenEntry* entry) {
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  if (j.contains("token")) {
    return Status::InvalidArgument(where + ": raw tokens are not accepted; configure sha256");
  }
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(
      j, {"sha256", "subject", "kind", "groups", "tenant", "expires_at"}, where));

  std::string hex;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "sha256", &hex, true, where));
  if (!DecodeDigest(hex, &entry->digest)) {
    return Status::InvalidArgument(where + ".sha256 must be 64 hexadecimal characters");
  }

  Principal& p = entry->principal;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "subject", &p.subject, true, where));
  if (p.subject.empty()) return Status::InvalidArgument(where + ".subject must not be empty");

  // Unnamed: the kernel decides by the door (an agent on /mcp).
  std::string kind;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "kind", &kind, false, where));
  auto parsed_kind = ParsePrincipalKind(kind);
  if (j.contains("kind") && !parsed_kind) {
    return Status::InvalidArgument(where + ".kind must be human, service or agent");
  }
  p.kind_unsaid = !parsed_kind;
  if (parsed_kind) p.kind = *parsed_kind;

  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "groups", &p.groups, false, where));
  for (const auto& group : p.groups) {
    if (group.empty()) return Status::InvalidArgument(where + ".groups must not hold empty names");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "tenant", &p.tenant, false, where));

  std::string expires;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "expires_at", &expires, false, where));
  if (!expires.empty()) {
    auto micros = scope::ParseTimestampMicros(expires, /*require_offset=*/true);
    if (!micros) {
      return Status::InvalidArgument(where +
                                     ".expires_at must be an RFC 3339 timestamp with an offset, "
                                     "e.g. 2027-01-01T00:00:00Z");
    }
    entry->expires_at_micros = *micros;
  }
  return Status::Ok();
}

}  // namespace

Result<StaticTokensConfig> ParseConfig(const Json& config) {
  if (!config.is_object()) return Status::InvalidArgument("configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(config, {"tokens"}, "configuration"));
  auto tokens = config.find("tokens");
  if (tokens == config.end()) return Status::InvalidArgument("tokens is required");
  if (!tokens->is_array()) return Status::InvalidArgument("tokens must be an array");

  StaticTokensConfig parsed;
  parsed.tokens.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string where = "tokens[" + std::to_string(i) + "]";
    TokenEntry entry;
    AIRLOCK_RETURN_IF_ERROR(ParseEntry((*tokens)[i], where, &entry));
    for (size_t k = 0; k < parsed.tokens.size(); ++k) {
      if (parsed.tokens[k].digest == entry.digest) {
        return Status::InvalidArgument(where + ".sha256 duplicates tokens[" + std::to_string(k) +
                                       "].sha256");
      }
    }
    parsed.tokens.push_back(std::move(entry));
  }
  return parsed;
}

}  // namespace airlock::identity::static_tokens
