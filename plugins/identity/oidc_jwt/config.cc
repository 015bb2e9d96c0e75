#include "config.h"

#include <set>
#include <string>
#include <string_view>

#include "airlock/cpp/config_read.hpp"

namespace airlock::identity::oidc_jwt {
namespace {

constexpr std::string_view kWhere = "config";

const std::set<std::string, std::less<>> kKnownKeys = {"issuer",
                                                       "audience",
                                                       "jwks_file",
                                                       "jwks_url",
                                                       "jwks_ca_file",
                                                       "jwks_timeout_ms",
                                                       "jwks_max_bytes",
                                                       "jwks_max_keys",
                                                       "jwks_refresh_min_interval_seconds",
                                                       "jwks_max_age_seconds",
                                                       "algorithms",
                                                       "clock_skew_seconds",
                                                       "max_token_bytes",
                                                       "require_exp",
                                                       "subject_claim",
                                                       "groups_claim",
                                                       "kind_claim",
                                                       "kind_map",
                                                       "kind",
                                                       "tenant_claim",
                                                       "tenant"};

Status IntInRange(const Json& j, const char* key, int64_t min, int64_t max, int64_t* out) {
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(j, key, out, false, kWhere));
  if (*out < min || *out > max) {
    return Status::InvalidArgument(std::string(key) + " must be between " + std::to_string(min) +
                                   " and " + std::to_string(max));
  }
  return Status::Ok();
}

Status ParseKind(const std::string& name, const std::string& key, PrincipalKind* out) {
  auto kind = ParsePrincipalKind(name);
  if (!kind) return Status::InvalidArgument(key + " must be human, service or agent");
  *out = *kind;
  return Status::Ok();
}

}  // namespace

Result<OidcJwtConfig> ParseConfig(const Json& j, const sdk::Host& host) {
  if (!j.is_object()) return Status::InvalidArgument("configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(j, kKnownKeys, "configuration"));
  OidcJwtConfig c;

  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "issuer", &c.issuer, true, kWhere));
  if (c.issuer.empty()) return Status::InvalidArgument("issuer must not be empty");

  auto aud = j.find("audience");
  if (aud == j.end()) return Status::InvalidArgument("audience is required");
  if (aud->is_string()) {
    c.audiences.push_back(aud->get<std::string>());
  } else {
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "audience", &c.audiences, true, kWhere));
  }
  if (c.audiences.empty()) return Status::InvalidArgument("audience must name at least one value");
  for (const auto& a : c.audiences) {
    if (a.empty()) return Status::InvalidArgument("audience must not hold empty values");
  }

  JwksSourceConfig& s = c.jwks;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "jwks_file", &s.file, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "jwks_url", &s.url, false, kWhere));
  if (s.file.empty() == s.url.empty()) {
    return Status::InvalidArgument("set exactly one of jwks_file and jwks_url");
  }
  if (!s.url.empty() && s.url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("jwks_url must be an https:// URL");
  }
  if (!s.file.empty()) s.file = host.ResolvePath(s.file);
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "jwks_ca_file", &s.ca_file, false, kWhere));
  if (!s.ca_file.empty()) {
    if (s.url.empty()) return Status::InvalidArgument("jwks_ca_file applies only with jwks_url");
    s.ca_file = host.ResolvePath(s.ca_file);
  }
  AIRLOCK_RETURN_IF_ERROR(IntInRange(j, "jwks_timeout_ms", 100, 60000, &s.timeout_ms));
  int64_t max_bytes = static_cast<int64_t>(s.max_bytes);
  AIRLOCK_RETURN_IF_ERROR(IntInRange(j, "jwks_max_bytes", 1024, 16 << 20, &max_bytes));
  s.max_bytes = static_cast<size_t>(max_bytes);
  int64_t max_keys = static_cast<int64_t>(s.max_keys);
  AIRLOCK_RETURN_IF_ERROR(IntInRange(j, "jwks_max_keys", 1, 1024, &max_keys));
  s.max_keys = static_cast<size_t>(max_keys);
  AIRLOCK_RETURN_IF_ERROR(IntInRange(j, "jwks_refresh_min_interval_seconds", 0, 86400,
                                     &s.refresh_min_interval_seconds));
  AIRLOCK_RETURN_IF_ERROR(IntInRange(j, "jwks_max_age_seconds", 0, 30 * 86400, &s.max_age_seconds));

  std::vector<std::string> algorithms;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "algorithms", &algorithms, false, kWhere));
  if (j.contains("algorithms") && algorithms.empty()) {
    return Status::InvalidArgument("algorithms must name at least one algorithm");
  }
  for (const auto& name : algorithms) {
    auto alg = ParseAlgorithm(name);
    if (!alg) {
      return Status::InvalidArgument(
          "algorithms: '" + name +
          "' is not supported (RS256, RS384, RS512, PS256, ES256, ES384, EdDSA)");
    }
    c.algorithms.push_back(*alg);
  }
  if (c.algorithms.empty()) c.algorithms = SupportedAlgorithms();

  AIRLOCK_RETURN_IF_ERROR(IntInRange(j, "clock_skew_seconds", 0, 600, &c.clock_skew_seconds));
  int64_t max_token = static_cast<int64_t>(c.max_token_bytes);
  AIRLOCK_RETURN_IF_ERROR(IntInRange(j, "max_token_bytes", 256, 1 << 20, &max_token));
  c.max_token_bytes = static_cast<size_t>(max_token);
  if (auto it = j.find("require_exp"); it != j.end()) {
    if (!it->is_boolean()) return Status::InvalidArgument("require_exp must be a boolean");
    c.require_exp = it->get<bool>();
  }

  ClaimMapping& m = c.claims;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "subject_claim", &m.subject_claim, false, kWhere));
  if (m.subject_claim.empty()) return Status::InvalidArgument("subject_claim must not be empty");
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "groups_claim", &m.groups_claim, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "kind_claim", &m.kind_claim, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "tenant_claim", &m.tenant_claim, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "tenant", &m.tenant, false, kWhere));
  std::string kind = "human";
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "kind", &kind, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(ParseKind(kind, "kind", &m.kind));
  if (auto it = j.find("kind_map"); it != j.end()) {
    if (!it->is_object()) return Status::InvalidArgument("kind_map must be an object");
    if (m.kind_claim.empty()) return Status::InvalidArgument("kind_map needs kind_claim");
    for (const auto& [value, mapped] : it->items()) {
      if (!mapped.is_string()) {
        return Status::InvalidArgument("kind_map." + value + " must be human, service or agent");
      }
      PrincipalKind k{};
      AIRLOCK_RETURN_IF_ERROR(ParseKind(mapped.get<std::string>(), "kind_map." + value, &k));
      m.kind_map.emplace(value, k);
    }
  }
  return c;
}

}  // namespace airlock::identity::oidc_jwt
