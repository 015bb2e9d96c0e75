// Registers the OIDC/JWT identity provider under the name "oidc-jwt".
#include "airlock/cpp/plugin.hpp"
#include "oidc_jwt.h"

namespace {

constexpr const char kConfigSchema[] = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["issuer", "audience"],
  "oneOf": [{"required": ["jwks_file"]}, {"required": ["jwks_url"]}],
  "properties": {
    "issuer": {"type": "string", "minLength": 1},
    "audience": {"oneOf": [{"type": "string", "minLength": 1},
                           {"type": "array", "minItems": 1,
                            "items": {"type": "string", "minLength": 1}}]},
    "jwks_file": {"type": "string", "minLength": 1},
    "jwks_url": {"type": "string", "pattern": "^https://"},
    "jwks_ca_file": {"type": "string"},
    "jwks_timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60000, "default": 5000},
    "jwks_max_bytes": {"type": "integer", "minimum": 1024, "maximum": 16777216, "default": 1048576},
    "jwks_max_keys": {"type": "integer", "minimum": 1, "maximum": 1024, "default": 64},
    "jwks_refresh_min_interval_seconds": {"type": "integer", "minimum": 0, "maximum": 86400,
                                          "default": 60},
    "jwks_max_age_seconds": {"type": "integer", "minimum": 0, "maximum": 2592000, "default": 3600},
    "algorithms": {"type": "array", "minItems": 1,
                   "items": {"enum": ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384",
                                      "EdDSA"]}},
    "clock_skew_seconds": {"type": "integer", "minimum": 0, "maximum": 600, "default": 60},
    "max_token_bytes": {"type": "integer", "minimum": 256, "maximum": 1048576, "default": 16384},
    "require_exp": {"type": "boolean", "default": true},
    "subject_claim": {"type": "string", "minLength": 1, "default": "sub"},
    "groups_claim": {"type": "string"},
    "kind_claim": {"type": "string"},
    "kind_map": {"type": "object",
                 "additionalProperties": {"enum": ["human", "service", "agent"]}},
    "kind": {"enum": ["human", "service", "agent"], "default": "human"},
    "tenant_claim": {"type": "string"},
    "tenant": {"type": "string"}
  }
})";

}  // namespace

AIRLOCK_IDENTITY_PLUGIN(airlock::identity::oidc_jwt::OidcJwt, "oidc-jwt", "1.0.0",
                        "Bearer JWTs verified against an OIDC issuer's JWKS", kConfigSchema)
