// Registers the client-certificate identity provider under the name "mtls".
#include "airlock/cpp/plugin.hpp"
#include "mtls.h"

namespace {

constexpr const char kConfigSchema[] = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["ca_file"],
  "properties": {
    "ca_file": {"type": "string", "minLength": 1},
    "subject_from": {"enum": ["cn", "san_uri", "san_dns", "san_email"], "default": "cn"},
    "subject_prefix": {"type": "string"},
    "kind": {"enum": ["human", "service", "agent"], "default": "service"},
    "groups": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "tenant": {"type": "string"},
    "require_client_auth_eku": {"type": "boolean", "default": true},
    "max_chain_certificates": {"type": "integer", "minimum": 1, "maximum": 32, "default": 8},
    "mappings": {
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["subject"],
        "properties": {
          "subject": {"type": "string", "minLength": 1},
          "kind": {"enum": ["human", "service", "agent"]},
          "groups": {"type": "array", "items": {"type": "string", "minLength": 1}},
          "tenant": {"type": "string"}
        }
      }
    }
  }
})";

}  // namespace

AIRLOCK_IDENTITY_PLUGIN(airlock::identity::mtls::Mtls, "mtls", "1.0.0",
                        "TLS client certificates verified against a CA bundle", kConfigSchema)
