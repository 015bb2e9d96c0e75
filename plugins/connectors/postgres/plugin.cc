// Registers the postgres connector under the name "postgres".
#include "airlock/cpp/plugin.hpp"
#include "postgres.h"

namespace {

constexpr const char kConfigSchema[] = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["host", "database", "user", "datasets"],
  "properties": {
    "host": {"type": "string", "minLength": 1},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 5432},
    "database": {"type": "string", "minLength": 1},
    "user": {"type": "string", "minLength": 1},
    "password": {"type": "string", "pattern": "^(env:.+|file:/.+)$"},
    "sslmode": {"enum": ["disable", "require", "verify-ca", "verify-full"], "default": "verify-full"},
    "ca_file": {"type": "string"},
    "connect_timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 10},
    "statement_timeout_ms": {"type": "integer", "minimum": 0, "maximum": 86400000, "default": 0},
    "pull_timeout_ms": {"type": "integer", "minimum": 0, "maximum": 86400000, "default": 0},
    "batch_rows": {"type": "integer", "minimum": 1, "maximum": 1048576, "default": 10000},
    "application_name": {"type": "string", "maxLength": 63, "default": "airlock"},
    "datasets": {
      "type": "array",
      "minItems": 1,
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
          "name": {"type": "string", "minLength": 1},
          "schema": {"type": "string"},
          "table": {"type": "string", "minLength": 1},
          "query": {"type": "string", "minLength": 1},
          "description": {"type": "string"},
          "tags": {"type": "array", "items": {"type": "string"}}
        }
      }
    }
  }
})";

}  // namespace

AIRLOCK_CONNECTOR_PLUGIN(airlock::connectors::postgres::PostgresConnector, "postgres", "1.0.0",
                         "Tables, views and named queries of a PostgreSQL database", kConfigSchema)
