#include "kernel/common/strict_json.h"

#include <gtest/gtest.h>

#include <string>

namespace airlock {
namespace {

TEST(StrictJson, ParsesOrdinaryDocuments) {
  auto parsed = ParseStrictJson(R"({"a": 1, "b": {"a": 2, "c": [{"a": 3}, {"a": 4}]}})", "body");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ((*parsed)["b"]["c"][1]["a"], 4);
  // The same key in sibling and nested objects is not a repetition.
  EXPECT_TRUE(ParseStrictJson(R"([{"k": 1}, {"k": 2}])", "body").ok());
  EXPECT_TRUE(ParseStrictJson(R"({"k": {"k": {"k": 1}}})", "body").ok());
  EXPECT_TRUE(ParseStrictJson("3", "body").ok());
}

TEST(StrictJson, RefusesARepeatedKeyNamingIt) {
  for (const char* text :
       {R"({"window_seconds": 60, "window_seconds": 600})",
        R"({"x": {"a": [1, {"b": 1}], "window_seconds": 1, "window_seconds": 2}})",
        R"([{"ok": 1}, {"window_seconds": 1, "y": 2, "window_seconds": 3}])"}) {
    auto parsed = ParseStrictJson(text, "request body");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), "request body repeats the key 'window_seconds'") << text;
  }
  // A repetition after a closed sibling object is still caught in its own object.
  auto parsed = ParseStrictJson(R"({"a": {"b": 1}, "c": 2, "a": 3})", "configuration file x");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "configuration file x repeats the key 'a'");
}

TEST(StrictJson, RefusesInvalidJsonAndBoundsTheEchoedKey) {
  auto parsed = ParseStrictJson(R"({"a": )", "request body");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "request body is not valid JSON");

  const std::string key(5000, 'k');
  parsed = ParseStrictJson("{\"" + key + "\": 1, \"" + key + "\": 2}", "request body");
  ASSERT_FALSE(parsed.ok());
  EXPECT_LT(parsed.status().message().size(), 200u);
}

TEST(StrictJson, RefusesDeepNesting) {
  std::string ok_text =
      std::string(kMaxStrictJsonDepth, '[') + std::string(kMaxStrictJsonDepth, ']');
  EXPECT_TRUE(ParseStrictJson(ok_text, "body").ok());
  for (const size_t depth : {size_t(kMaxStrictJsonDepth) + 1, size_t(200000)}) {
    std::string text = "{\"a\": " + std::string(depth, '[') + std::string(depth, ']') + "}";
    auto parsed = ParseStrictJson(text, "request body");
    ASSERT_FALSE(parsed.ok()) << depth;
    EXPECT_EQ(parsed.status().message(), "request body nests deeper than 64 levels");
  }
}

}  // namespace
}  // namespace airlock
