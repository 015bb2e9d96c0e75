#include "kernel/plugin_host/config_schema.h"

#include <gtest/gtest.h>

namespace airlock::plugin_host {
namespace {

using nlohmann::json;

// The shape in-tree manifests use: an object of known keys, some required,
// bounded integers, enums, patterns, lists of objects.
const json kSchema = json::parse(R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["root"],
  "properties": {
    "root": {"type": "string", "minLength": 1, "description": "where the files are"},
    "batch_rows": {"type": "integer", "minimum": 1, "maximum": 1048576, "default": 8192},
    "password": {"type": "string", "pattern": "^(env|file):"},
    "mode": {"enum": ["csv", "jsonl"]},
    "ratio": {"type": ["number", "null"], "maximum": 1},
    "datasets": {
      "type": "array", "minItems": 1,
      "items": {
        "type": "object", "additionalProperties": false, "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 8}, "tags": {"type": "array"}}
      }
    },
    "tls": {"oneOf": [{"type": "boolean"}, {"type": "object", "required": ["ca_file"]}]}
  }
})");

std::string Why(const json& value) {
  const Status s = CheckAgainstSchema(kSchema, value, "connector 'files' config");
  EXPECT_TRUE(s.ok() || s.code() == StatusCode::kInvalidArgument) << s.ToString();
  return s.ok() ? "" : s.message();
}

TEST(ConfigSchema, AGoodConfigurationPasses) {
  EXPECT_TRUE(SchemaSupport(kSchema).ok()) << SchemaSupport(kSchema).message();
  EXPECT_EQ(Why({{"root", "/data"},
                 {"batch_rows", 500},
                 {"password", "env:PW"},
                 {"mode", "csv"},
                 {"ratio", nullptr},
                 {"datasets", {{{"name", "orders"}, {"tags", {"a"}}}}},
                 {"tls", {{"ca_file", "ca.pem"}}}}),
            "");
  EXPECT_EQ(Why({{"root", "/data"}, {"batch_rows", 500.0}, {"tls", true}}), "")
      << "an integral number is an integer";
}

TEST(ConfigSchema, EachMistakeIsNamedWhereItIs) {
  EXPECT_EQ(Why({{"rooot", "/data"}}), "connector 'files' config.root: is required");
  EXPECT_EQ(Why({{"root", "/d"}, {"rooot", "/data"}}),
            "connector 'files' config.rooot: is not a setting this plugin knows");
  EXPECT_EQ(Why({{"root", ""}}), "connector 'files' config.root: must not be empty");
  EXPECT_EQ(Why({{"root", 7}}), "connector 'files' config.root: must be string");
  EXPECT_EQ(Why({{"root", "/d"}, {"batch_rows", 0}}),
            "connector 'files' config.batch_rows: must be at least 1");
  EXPECT_EQ(Why({{"root", "/d"}, {"batch_rows", 2000000}}),
            "connector 'files' config.batch_rows: must be at most 1048576");
  EXPECT_EQ(Why({{"root", "/d"}, {"batch_rows", 1.5}}),
            "connector 'files' config.batch_rows: must be integer");
  EXPECT_EQ(Why({{"root", "/d"}, {"password", "hunter2"}}),
            "connector 'files' config.password: must match ^(env|file):");
  EXPECT_EQ(Why({{"root", "/d"}, {"mode", "xml"}}),
            "connector 'files' config.mode: must be one of [\"csv\",\"jsonl\"]");
  EXPECT_EQ(Why({{"root", "/d"}, {"ratio", "high"}}),
            "connector 'files' config.ratio: must be number or null");
  EXPECT_EQ(Why({{"root", "/d"}, {"datasets", json::array()}}),
            "connector 'files' config.datasets: must hold at least 1 item(s)");
  EXPECT_EQ(Why({{"root", "/d"}, {"datasets", {{{"name", "a"}}, {{"nam", "b"}}}}}),
            "connector 'files' config.datasets[1].name: is required");
  EXPECT_EQ(Why({{"root", "/d"}, {"datasets", {{{"name", "much-too-long"}}}}}),
            "connector 'files' config.datasets[0].name: must be at most 8 characters");
  EXPECT_EQ(Why({{"root", "/d"}, {"tls", "yes"}}), "connector 'files' config.tls: must be boolean");
  EXPECT_EQ(Why(json::array()), "connector 'files' config: must be object");
}

TEST(ConfigSchema, OneOfRefusesAValueMatchingTwoForms) {
  const json schema = {{"oneOf", {{{"type", "integer"}}, {{"type", "number"}}}}};
  ASSERT_TRUE(SchemaSupport(schema).ok());
  EXPECT_TRUE(CheckAgainstSchema(schema, 1.5, "x").ok());
  EXPECT_EQ(CheckAgainstSchema(schema, 2, "x").message(),
            "x: matches more than one of the forms it may take");
  const json any = {{"anyOf", {{{"type", "integer"}}, {{"type", "string"}}}}};
  EXPECT_TRUE(CheckAgainstSchema(any, 2, "x").ok());
  EXPECT_FALSE(CheckAgainstSchema(any, true, "x").ok());
  const json all = {{"allOf", {{{"minimum", 1}}, {{"maximum", 3}}}}};
  EXPECT_TRUE(CheckAgainstSchema(all, 2, "x").ok());
  EXPECT_EQ(CheckAgainstSchema(all, 4, "x").message(), "x: must be at most 3");
  EXPECT_EQ(CheckAgainstSchema(json::parse(R"({"const": "v1"})"), "v2", "x").message(),
            "x: must be \"v1\"");
  EXPECT_EQ(CheckAgainstSchema(false, 1, "x").message(), "x: is not allowed here");
}

TEST(ConfigSchema, KeywordsItCannotCheckAreNamedNotHalfChecked) {
  const auto unsupported = [](const char* text) {
    const Status s = SchemaSupport(json::parse(text));
    EXPECT_EQ(s.code(), StatusCode::kNotImplemented) << text;
    return s.message();
  };
  EXPECT_EQ(unsupported(R"({"type":"object","properties":{"a":{"$ref":"#/$defs/a"}}})"),
            "the configuration schema uses the keyword '$ref' at /properties/a");
  EXPECT_EQ(unsupported(R"({"patternProperties":{"^x":{}}})"),
            "the configuration schema uses the keyword 'patternProperties' at its root");
  EXPECT_EQ(unsupported(R"({"items":{"pattern":"(unclosed"}})"),
            "the configuration schema has a pattern this checker cannot compile at /items");
  EXPECT_EQ(unsupported(R"({"minimum":"1"})"),
            "the configuration schema has a minimum that is not a number at its root");
  // Deep nesting is refused, not recursed into without end.
  json deep = json::object();
  for (int i = 0; i < 100; ++i) deep = json{{"items", deep}};
  EXPECT_EQ(SchemaSupport(deep).code(), StatusCode::kNotImplemented);
}

}  // namespace
}  // namespace airlock::plugin_host
