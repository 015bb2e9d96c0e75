// Registers the MongoDB connector under the name "mongodb".
#include "airlock/cpp/plugin.hpp"
#include "mongodb.h"

namespace {

constexpr const char kConfigSchema[] = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "oneOf": [{"required": ["uri"]}, {"required": ["uri_secret"]}],
  "properties": {
    "uri": {"type": "string", "minLength": 1},
    "uri_secret": {"type": "string", "pattern": "^(env|file):"},
    "database": {"type": "string", "minLength": 1},
    "username": {"type": "string"},
    "password_secret": {"type": "string", "pattern": "^(env|file):"},
    "auth_source": {"type": "string"},
    "auth_mechanism": {"type": "string"},
    "tls": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "enabled": {"type": "boolean", "default": true},
        "ca_file": {"type": "string"},
        "certificate_key_file": {"type": "string"},
        "certificate_key_password_secret": {"type": "string", "pattern": "^(env|file):"},
        "allow_invalid_hostnames": {"type": "boolean", "default": false}
      }
    },
    "batch_rows": {"type": "integer", "minimum": 1, "maximum": 1048576, "default": 8192},
    "infer_documents": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1000},
    "nested": {"enum": ["json", "flatten"], "default": "json"},
    "datasets": {
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
          "name": {"type": "string", "minLength": 1},
          "collection": {"type": "string", "minLength": 1},
          "pipeline": {"type": "array", "items": {"type": "object"}},
          "nested": {"enum": ["json", "flatten"]},
          "description": {"type": "string"},
          "tags": {"type": "array", "items": {"type": "string"}},
          "columns": {
            "type": "array",
            "items": {
              "type": "object",
              "additionalProperties": false,
              "required": ["name", "type"],
              "properties": {
                "name": {"type": "string", "minLength": 1},
                "type": {"enum": ["objectid", "int32", "int64", "float64", "decimal", "bool",
                                  "utf8", "timestamp", "binary", "json", "mixed"]}
              }
            }
          }
        }
      }
    }
  }
})";

}  // namespace

AIRLOCK_CONNECTOR_PLUGIN(airlock::connectors::mongodb::MongoConnector, "mongodb", "1.0.0",
                         "MongoDB collections and aggregation pipelines through libmongoc",
                         kConfigSchema)
