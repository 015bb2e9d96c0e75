// Registers the files connector under the name "files".
#include "airlock/cpp/plugin.hpp"
#include "files.h"

namespace {

constexpr const char kConfigSchema[] = R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["root"],
  "properties": {
    "root": {"type": "string", "minLength": 1},
    "infer_rows": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1000},
    "batch_rows": {"type": "integer", "minimum": 1, "maximum": 1048576, "default": 8192},
    "datasets": {
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "file"],
        "properties": {
          "name": {"type": "string", "minLength": 1},
          "file": {"type": "string", "minLength": 1},
          "format": {"enum": ["csv", "jsonl"]},
          "delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ","},
          "header": {"type": "boolean", "default": true},
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
                "type": {"enum": ["int64", "float64", "bool", "utf8", "date32", "timestamp"]}
              }
            }
          }
        }
      }
    }
  }
})";

}  // namespace

AIRLOCK_CONNECTOR_PLUGIN(airlock::connectors::files::FilesConnector, "files", "1.0.0",
                         "CSV and JSON Lines files under one root directory", kConfigSchema)
