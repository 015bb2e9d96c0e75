// Registers the static-tokens identity provider under the name "static-tokens".
#include "airlock/cpp/plugin.hpp"
#include "static_tokens.h"

namespace {

constexpr const char kConfigSchema[] = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["tokens"],
  "properties": {
    "tokens": {
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["sha256", "subject"],
        "properties": {
          "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
          "subject": {"type": "string", "minLength": 1},
          "kind": {"enum": ["human", "service", "agent"]},
          "groups": {"type": "array", "items": {"type": "string", "minLength": 1}},
          "tenant": {"type": "string"},
          "expires_at": {"type": "string", "format": "date-time"}
        }
      }
    }
  }
})";

}  // namespace

AIRLOCK_IDENTITY_PLUGIN(airlock::identity::static_tokens::StaticTokens, "static-tokens", "1.0.0",
                        "Bearer API tokens checked against configured SHA-256 hashes",
                        kConfigSchema)
