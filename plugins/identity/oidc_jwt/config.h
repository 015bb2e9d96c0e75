// Configuration of the oidc-jwt identity provider: where the issuer's keys
// come from (a JWKS file or an HTTPS URL), which tokens are acceptable
// (issuer, audiences, algorithms, clock skew) and how claims become a
// principal (subject, groups, kind, tenant).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "jwk.h"

namespace airlock::identity::oidc_jwt {

struct JwksSourceConfig {
  std::string file;            // absolute path, or empty
  std::string url;             // https://host[:port]/path, or empty (exactly one is set)
  std::string ca_file;         // PEM bundle to verify the JWKS server; empty = system store
  int64_t timeout_ms = 5000;   // whole fetch: resolve .. last byte
  size_t max_bytes = 1 << 20;  // response body bound
  size_t max_keys = 64;        // keys per document
  int64_t refresh_min_interval_seconds = 60;  // at most one fetch per interval
  int64_t max_age_seconds = 3600;             // refetch (lazily) when older; 0 = never
};

struct ClaimMapping {
  std::string subject_claim = "sub";              // dotted path
  std::string groups_claim;                       // dotted path; empty = no groups
  std::string kind_claim;                         // dotted path; empty = fixed `kind`
  std::map<std::string, PrincipalKind> kind_map;  // claim value -> kind (optional)
  PrincipalKind kind = PrincipalKind::kHuman;     // fixed, or when the claim is absent
  std::string tenant_claim;                       // dotted path; empty = fixed `tenant`
  std::string tenant;
};

struct OidcJwtConfig {
  JwksSourceConfig jwks;
  std::string issuer;                  // exact match with `iss`
  std::vector<std::string> audiences;  // `aud` must name at least one
  std::vector<Algorithm> algorithms;   // accepted `alg` values
  int64_t clock_skew_seconds = 60;
  size_t max_token_bytes = 16 * 1024;
  bool require_exp = true;
  ClaimMapping claims;
};

// Parses and validates the whole configuration (keys in README.md). Relative
// paths are resolved against the kernel configuration's directory
// (host.ResolvePath). Errors are InvalidArgument naming the key.
Result<OidcJwtConfig> ParseConfig(const Json& config, const sdk::Host& host);

}  // namespace airlock::identity::oidc_jwt
