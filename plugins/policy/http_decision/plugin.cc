// Registers the external decision service backend under the name "http-decision".
#include "airlock/cpp/plugin.hpp"
#include "http_decision.h"

namespace {

constexpr const char kConfigSchema[] = R"json({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["url", "decision_path"],
  "properties": {
    "url": {"type": "string", "description": "http:// or https:// base URL of the decision service"},
    "decision_path": {"type": "string", "description": "POST <url>/v1/data/<decision_path>"},
    "connect_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000, "default": 1000},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 120000, "default": 3000},
    "max_response_bytes": {"type": "integer", "minimum": 256, "maximum": 67108864, "default": 1048576},
    "max_connections": {"type": "integer", "minimum": 1, "maximum": 256, "default": 4},
    "tls": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "ca_file": {"type": "string"},
        "server_name": {"type": "string"}
      }
    },
    "bearer_token_secret": {"type": "string", "pattern": "^(env:|file:)"}
  }
})json";

}  // namespace

AIRLOCK_POLICY_PLUGIN(
    airlock::policy::http_decision::HttpDecisionPolicy, "http-decision", "1.0.0",
    "External decision service over HTTP(S), OPA REST data API shape, fail-closed", kConfigSchema)
