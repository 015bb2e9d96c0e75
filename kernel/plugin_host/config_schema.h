// Checks a plugin's configuration against the JSON Schema its manifest
// declares (config_schema), before the plugin sees it: at `airlockd
// check-config` and at start, for kernel-side plugins and for connectors
// (whose code runs only in enclaves, so that a typo is heard of before a
// human approves a request, not when the pull fails).
//
// The vocabulary is the part of JSON Schema 2020-12 that configuration
// schemas use: type (a name or a list), enum, const, properties, required,
// additionalProperties (false or a schema), items, minItems, maxItems,
// minLength, maxLength, pattern (ECMAScript), minimum, maximum, oneOf,
// anyOf, allOf; annotations ($schema, $id, title, description, default,
// examples, format, deprecated, readOnly, writeOnly) are ignored. A schema
// with any other keyword is not checked at all (SchemaSupport says which
// keyword), rather than checked in part: the plugin's own check still runs.
//
// Thread-safety: stateless.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::plugin_host {

// Ok when every keyword of `schema` (recursively) is one this checker
// understands; NotImplemented naming the first that is not, and where.
Status SchemaSupport(const nlohmann::json& schema);

// Ok when `value` satisfies `schema`; InvalidArgument naming the first
// place that does not, as `where` followed by the path
// ("connectors.files.config.datasets[0].file: is required"). The schema
// must pass SchemaSupport.
Status CheckAgainstSchema(const nlohmann::json& schema, const nlohmann::json& value,
                          const std::string& where);

}  // namespace airlock::plugin_host
