// Registers the rules policy backend under the name "rules".
#include "airlock/cpp/plugin.hpp"
#include "rules.h"

namespace {

constexpr const char kConfigSchema[] = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["version", "rules"],
  "properties": {
    "version": {"const": 1},
    "description": {"type": "string"},
    "default_max_window_seconds": {"type": "integer", "minimum": 1, "default": 3600},
    "rules": {
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "effect"],
        "properties": {
          "name": {"type": "string", "minLength": 1},
          "description": {"type": "string"},
          "effect": {"enum": ["allow", "deny"]},
          "subjects": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
              "users": {"type": "array", "items": {"type": "string"}},
              "groups": {"type": "array", "items": {"type": "string"}},
              "kinds": {"type": "array", "items": {"enum": ["human", "service", "agent"]}},
              "tenants": {"type": "array", "items": {"type": "string"}}
            }
          },
          "datasets": {"type": "array", "items": {"type": "string"}},
          "tags": {"type": "array", "items": {"type": "string"}},
          "purposes": {"type": "array", "items": {"type": "string"}},
          "max_window_seconds": {"type": "integer", "minimum": 1},
          "purpose_min_length": {"type": "integer", "minimum": 1, "maximum": 1000},
          "approval": {
            "type": "object",
            "additionalProperties": false,
            "required": ["groups"],
            "properties": {
              "groups": {"type": "array", "items": {"type": "string"}, "minItems": 1},
              "count": {"type": "integer", "minimum": 1},
              "timeout_seconds": {"type": "integer", "minimum": 0}
            }
          },
          "obligations": {
            "type": "object",
            "additionalProperties": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "columns": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "masks": {"type": "object", "additionalProperties": {"enum": ["redact", "last4", "hash"]}},
                "audit_query_text": {"type": "boolean"},
                "aggregate_only": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["min_group_size", "allowed_functions", "dimensions"],
                  "properties": {
                    "min_group_size": {"type": "integer", "minimum": 1},
                    "allowed_functions": {"type": "array", "items": {"enum": ["count", "count_distinct", "sum", "avg", "min", "max"]}},
                    "dimensions": {"type": "array", "items": {"type": "string"}},
                    "metrics": {"type": "array", "items": {"type": "string"}}
                  }
                },
                "row_filter": {
                  "type": "array",
                  "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["column", "op"],
                    "properties": {
                      "column": {"type": "string"},
                      "op": {"enum": ["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in",
                                     "is_null", "not_null", "like"]},
                      "value": {}
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
})";

}  // namespace

AIRLOCK_POLICY_PLUGIN(airlock::policy::rules::RulesPolicy, "rules", "1.0.0",
                      "Declarative allow/deny rules with approvals and obligations", kConfigSchema)
