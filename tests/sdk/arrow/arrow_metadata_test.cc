// Schema metadata (arrow.hpp) and the "airlock.key" value (batch.hpp).
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"

namespace airlock::arrow {
namespace {

std::string Int32Bytes(int32_t v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

TEST(SchemaMetadata, EncodesAsTheCDataInterfaceSpecifies) {
  const std::string encoded = EncodeMetadata({{"k", "vv"}, {"", ""}});
  const std::string expected =
      Int32Bytes(2) + Int32Bytes(1) + "k" + Int32Bytes(2) + "vv" + Int32Bytes(0) + Int32Bytes(0);
  EXPECT_EQ(encoded, expected);
  EXPECT_EQ(EncodeMetadata({}), "");
}

TEST(SchemaMetadata, RoundTripsThroughASchema) {
  OwnedSchema schema = MakeStructSchema({{"id", Type::kInt64}, {"name", Type::kUtf8}});
  EXPECT_EQ(schema->metadata, nullptr);
  auto none = ParseMetadata(schema->metadata);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  const Metadata pairs = {{"airlock.key", "[\"id\"]"}, {"other", std::string("a\0b", 3)}};
  ASSERT_TRUE(SetSchemaMetadata(schema, pairs).ok());
  ASSERT_NE(schema->metadata, nullptr);
  auto parsed = ParseMetadata(schema->metadata);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, pairs);
  auto found = FindMetadata(*schema.get(), "other");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, std::string("a\0b", 3));
  auto missing = FindMetadata(*schema.get(), "absent");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  // A move keeps the metadata; clearing it leaves NULL.
  OwnedSchema moved = std::move(schema);
  EXPECT_EQ(*ParseMetadata(moved->metadata), pairs);
  ASSERT_TRUE(SetSchemaMetadata(moved, {}).ok());
  EXPECT_EQ(moved->metadata, nullptr);
}

TEST(SchemaMetadata, RefusesSchemasItCannotOwn) {
  OwnedSchema released;
  EXPECT_EQ(SetSchemaMetadata(released, {{"k", "v"}}).code(), StatusCode::kInvalidArgument);

  // A schema from another producer: its private_data is not ours.
  static int foreign_releases = 0;
  ArrowSchema raw{};
  raw.format = "+s";
  raw.release = [](ArrowSchema* s) {
    ++foreign_releases;
    s->release = nullptr;
  };
  OwnedSchema foreign = OwnedSchema::TakeFrom(&raw);
  EXPECT_EQ(SetSchemaMetadata(foreign, {{"k", "v"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(foreign->metadata, nullptr);
  foreign.reset();
  EXPECT_EQ(foreign_releases, 1);
}

TEST(SchemaMetadata, RejectsBadCountsAndLengths) {
  const std::string negative_count = Int32Bytes(-1);
  EXPECT_EQ(ParseMetadata(negative_count.data()).status().code(), StatusCode::kInvalidArgument);
  const std::string too_many = Int32Bytes(kMaxMetadataPairs + 1);
  EXPECT_EQ(ParseMetadata(too_many.data()).status().code(), StatusCode::kInvalidArgument);
  const std::string negative_key = Int32Bytes(1) + Int32Bytes(-5);
  EXPECT_EQ(ParseMetadata(negative_key.data()).status().code(), StatusCode::kInvalidArgument);
  const std::string negative_value = Int32Bytes(1) + Int32Bytes(1) + "k" + Int32Bytes(-1);
  EXPECT_EQ(ParseMetadata(negative_value.data()).status().code(), StatusCode::kInvalidArgument);
}

OwnedSchema SchemaWithKey(const std::string& value) {
  OwnedSchema schema = MakeStructSchema({{"id", Type::kInt64}});
  EXPECT_TRUE(SetSchemaMetadata(schema, {{"x", "y"}, {sdk::kKeyColumnsMetadata, value}}).ok());
  return schema;
}

TEST(KeyColumns, ReadsTheKeyInOrder) {
  const std::string value = sdk::EncodeKeyColumns({"region", "id"});
  EXPECT_EQ(value, R"(["region","id"])");
  OwnedSchema schema = SchemaWithKey(value);
  auto key = sdk::KeyColumnsOf(*schema.get());
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, (std::vector<std::string>{"region", "id"}));
}

TEST(KeyColumns, NoMetadataMeansNoKey) {
  OwnedSchema plain = MakeStructSchema({{"id", Type::kInt64}});
  auto key = sdk::KeyColumnsOf(*plain.get());
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(key->empty());
  ASSERT_TRUE(SetSchemaMetadata(plain, {{"unrelated", "1"}}).ok());
  key = sdk::KeyColumnsOf(*plain.get());
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(key->empty());
}

TEST(KeyColumns, MalformedValuesAreRefused) {
  for (const char* value :
       {"", "id", "{\"id\":1}", "[]", "[1]", "[\"\"]", "[\"id\",\"id\"]", "[\"id\"", "null"}) {
    OwnedSchema schema = SchemaWithKey(value);
    EXPECT_EQ(sdk::KeyColumnsOf(*schema.get()).status().code(), StatusCode::kInvalidArgument)
        << value;
  }
  std::vector<std::string> many;
  for (size_t i = 0; i <= sdk::kMaxKeyColumns; ++i) many.push_back("c" + std::to_string(i));
  OwnedSchema schema = SchemaWithKey(sdk::EncodeKeyColumns(many));
  EXPECT_EQ(sdk::KeyColumnsOf(*schema.get()).status().code(), StatusCode::kInvalidArgument);
  schema =
      SchemaWithKey(sdk::EncodeKeyColumns({std::string(sdk::kMaxKeyColumnNameBytes + 1, 'k')}));
  EXPECT_EQ(sdk::KeyColumnsOf(*schema.get()).status().message(),
            "airlock.key must hold column names of 1 to 1024 bytes");
}

TEST(KeyColumns, OneRuleNamesWhereTheKeyCameFrom) {
  using nlohmann::json;
  auto key = sdk::KeyColumnsFromJson(json{"region", "id"}, "spec.datasets[0].key");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, (std::vector<std::string>{"region", "id"}));
  key = sdk::KeyColumnsFromJson(json{std::string(sdk::kMaxKeyColumnNameBytes, 'k')}, "k");
  EXPECT_TRUE(key.ok()) << "a name of exactly the bound is a name";
  const std::vector<std::pair<json, std::string>> bad = {
      {json("id"), "where must be an array of 1 to 32 column names"},
      {json::array(), "where must be an array of 1 to 32 column names"},
      {json::object(), "where must be an array of 1 to 32 column names"},
      {json{"id", 7}, "where must hold column names of 1 to 1024 bytes"},
      {json{"id", ""}, "where must hold column names of 1 to 1024 bytes"},
      {json{"a", "b", "a"}, "where names 'a' twice"},
  };
  for (const auto& [doc, message] : bad) {
    auto refused = sdk::KeyColumnsFromJson(doc, "where");
    ASSERT_FALSE(refused.ok()) << doc.dump();
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(refused.status().message(), message) << doc.dump();
  }
}

}  // namespace
}  // namespace airlock::arrow
