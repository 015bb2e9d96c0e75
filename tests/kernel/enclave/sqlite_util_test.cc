#include "kernel/enclave/sqlite_util.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kernel/enclave/enclave_spec.h"

namespace airlock::enclave {
namespace {

TEST(TemporalText, MatchesTheSdkFormattersAndParsesBack) {
  char buf[kMaxTemporalText];
  for (int64_t days = -800000; days <= 800000; days += 997) {
    const std::string text(buf, FormatDate32To(buf, static_cast<int32_t>(days)));
    ASSERT_EQ(text, arrow::FormatDate32(static_cast<int32_t>(days)));
    ASSERT_EQ(ParseDate32(text), days) << text;
  }
  for (int32_t days : {INT32_MIN, INT32_MAX, 0, -1}) {
    const std::string text(buf, FormatDate32To(buf, days));
    EXPECT_EQ(text, arrow::FormatDate32(days));
    EXPECT_EQ(ParseDate32(text), days) << text;
  }
  for (int64_t micros :
       {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{86399999999}, int64_t{-86400000000},
        int64_t{1700000000123456}, int64_t{-62135596800000000}, int64_t{253402300799999999},
        int64_t{-9000000000000000000}, int64_t{9000000000000000000}}) {
    for (bool tz : {false, true}) {
      const std::string text(buf, FormatTimestampTo(buf, micros, tz));
      ASSERT_EQ(text, arrow::FormatTimestamp(micros, tz));
      ASSERT_EQ(ParseTimestamp(text, tz), micros) << text;
      EXPECT_FALSE(ParseTimestamp(text, !tz).has_value()) << text;
    }
  }
  for (int64_t micros : {int64_t{0}, int64_t{1}, int64_t{86399999999}, int64_t{86400000000},
                         int64_t{-5000000}, int64_t{360000000000000}}) {
    const std::string text(buf, FormatTimeTo(buf, micros));
    ASSERT_EQ(text, arrow::FormatTime(micros));
    ASSERT_EQ(ParseTime(text), micros) << text;
  }
}

// Ingestion formats a column's timestamps in order, and most neighbours share
// their day: runs within a day, across midnight and back must all be right.
TEST(TemporalText, TimestampRunsWithinAndAcrossDaysFormatExactly) {
  char buf[kMaxTemporalText];
  const int64_t midnight = int64_t{1700006400} * 1000000;  // 2023-11-15 00:00:00 UTC
  std::vector<int64_t> series;
  for (int64_t i = -3000; i < 3000; ++i) series.push_back(midnight + i * 61000007);
  series.push_back(midnight - 1);  // back to the previous day, then forward again
  series.push_back(midnight);
  series.push_back(-midnight);
  series.push_back(midnight);
  for (int64_t micros : series) {
    for (bool tz : {false, true}) {
      const std::string text(buf, FormatTimestampTo(buf, micros, tz));
      ASSERT_EQ(text, arrow::FormatTimestamp(micros, tz));
    }
  }
}

TEST(TemporalText, RejectsAnythingElse) {
  for (const char* bad : {"", "2024-1-02", "2024-02-30", "2024-13-01", "2024-01-02x", "abcd-ef-gh",
                          "20240102", "2024-01-02 "}) {
    EXPECT_FALSE(ParseDate32(bad).has_value()) << bad;
  }
  for (const char* bad :
       {"2024-01-02", "2024-01-02 24:00:00", "2024-01-02 10:61:00", "2024-01-02 10:00:00.5",
        "2024-01-02 10:00:00.000000", "2024-01-02T10:00:00", "2024-01-02 10:00:00+01"}) {
    EXPECT_FALSE(ParseTimestamp(bad, true).has_value()) << bad;
    EXPECT_FALSE(ParseTimestamp(bad, false).has_value()) << bad;
  }
  for (const char* bad : {"10:00", "-00:00:00", "10:00:60", "1:00:00", "x"}) {
    EXPECT_FALSE(ParseTime(bad).has_value()) << bad;
  }
}

TEST(DeclaredTypes, MapBackToTheirArrowTypes) {
  for (arrow::Type type :
       {arrow::Type::kNull, arrow::Type::kBool, arrow::Type::kInt32, arrow::Type::kInt64,
        arrow::Type::kFloat64, arrow::Type::kUtf8, arrow::Type::kBinary, arrow::Type::kDate32,
        arrow::Type::kTimestampMicros, arrow::Type::kTime64Micros}) {
    arrow::Field field{"c", type, "", true};
    auto back = FieldFromDeclaredType("c", DeclaredType(field));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->type, type);
  }
  arrow::Field tz{"c", arrow::Type::kTimestampMicros, "Europe/Paris", true};
  EXPECT_EQ(FieldFromDeclaredType("c", DeclaredType(tz))->timezone, "UTC");
  EXPECT_FALSE(FieldFromDeclaredType("c", "VARCHAR(10)").has_value());
  EXPECT_FALSE(FieldFromDeclaredType("c", nullptr).has_value());
  EXPECT_EQ(QuoteIdentifier("a\"b"), "\"a\"\"b\"");
}

TEST(SafeTableNames, AllowOnlyPlainIdentifiers) {
  for (const char* good : {"orders", "_x", "A1_b2"}) EXPECT_TRUE(IsSafeTableName(good)) << good;
  for (const char* bad : {"", "1abc", "a-b", "a b", "a;DROP", "sqlite_master", "SQLITE_x",
                          "_airlock_staging_0", "\xc3\xa9t\xc3\xa9"}) {
    EXPECT_FALSE(IsSafeTableName(bad)) << bad;
  }
  EXPECT_FALSE(IsSafeTableName(std::string(129, 'a')));
}

TEST(EnclaveSpecParsing, ReadsAndValidates) {
  nlohmann::json spec = {
      {"request_id", "r1"},
      {"datasets", {{{"name", "a"}, {"connector", {{"path", "/x.so"}, {"config", {{"k", 1}}}}}}}},
      {"limits", {{"query_timeout_ms", 5}}}};
  auto parsed = EnclaveSpec::FromJson(spec);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->datasets[0].pull.dataset, "a");
  EXPECT_EQ(parsed->limits.query_timeout_ms, 5);
  EXPECT_EQ(parsed->limits.max_result_rows, EnclaveLimits{}.max_result_rows);

  auto with = [&](auto&& edit) {
    nlohmann::json copy = spec;
    edit(copy);
    return EnclaveSpec::FromJson(copy).status();
  };
  EXPECT_FALSE(with([](auto& j) { j["datasets"].push_back(j["datasets"][0]); }).ok());
  EXPECT_FALSE(with([](auto& j) {
                 auto second = j["datasets"][0];
                 second["name"] = "A";  // SQLite names are case-insensitive
                 j["datasets"].push_back(second);
               }).ok());
  EXPECT_FALSE(with([](auto& j) { j["datasets"] = nlohmann::json::array(); }).ok());
  EXPECT_FALSE(with([](auto& j) { j["limits"]["max_memory_bytes"] = 0; }).ok());
  EXPECT_FALSE(with([](auto& j) { j["mode"] = "batch"; }).ok());
  EXPECT_FALSE(with([](auto& j) { j["mode"] = "job"; }).ok());  // no queries
  EXPECT_FALSE(with([](auto& j) { j["datasets"][0].erase("connector"); }).ok());
  EXPECT_FALSE(with([](auto& j) { j["datasets"][0]["connector"]["config"] = 3; }).ok());
}

TEST(EnclaveSpecParsing, ReadsADeclaredKeyAndRefusesMalformedOnes) {
  nlohmann::json spec = {
      {"request_id", "r1"},
      {"datasets", {{{"name", "a"}, {"connector", {{"path", "/x.so"}}}, {"key", {"b", "a"}}}}}};
  auto parsed = EnclaveSpec::FromJson(spec);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->datasets[0].key, (std::vector<std::string>{"b", "a"}));
  spec["datasets"][0].erase("key");
  parsed = EnclaveSpec::FromJson(spec);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->datasets[0].key.empty());

  nlohmann::json too_many = nlohmann::json::array();
  for (int i = 0; i < 33; ++i) too_many.push_back("c" + std::to_string(i));
  for (const nlohmann::json& bad :
       {nlohmann::json("id"), nlohmann::json::array(), nlohmann::json({"id", "id"}),
        nlohmann::json({"id", ""}), nlohmann::json({1}), too_many,
        nlohmann::json({std::string(1025, 'k')})}) {
    spec["datasets"][0]["key"] = bad;
    const Status status = EnclaveSpec::FromJson(spec).status();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << bad.dump().substr(0, 40);
    EXPECT_THAT(status.message(), ::testing::HasSubstr("spec.datasets[0].key"));
  }
}

}  // namespace
}  // namespace airlock::enclave
