// Ingestion's key indexes: a table whose schema carries "airlock.key" is
// indexed on those columns before sealing; anything else is left alone.
#include "kernel/enclave/ingestion.h"

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kernel/enclave/sqlite_util.h"

namespace airlock::enclave {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

struct Source {
  std::string name;
  // The "airlock.key" value; none when empty.
  std::string key;
};

// Delivers `rows` rows of (id int64, region int32, label utf8) per dataset.
Status PullRows(const Source& source, int64_t rows, sdk::BatchConsumer& consumer) {
  arrow::RecordBatchBuilder builder({{"id", arrow::Type::kInt64},
                                     {"region", arrow::Type::kInt32},
                                     {"label", arrow::Type::kUtf8}});
  arrow::OwnedSchema schema = builder.MakeSchema();
  if (!source.key.empty()) {
    AIRLOCK_RETURN_IF_ERROR(
        arrow::SetSchemaMetadata(schema, {{sdk::kKeyColumnsMetadata, source.key}}));
  }
  AIRLOCK_RETURN_IF_ERROR(consumer.OnSchema(std::move(schema)));
  for (int64_t i = 0; i < rows; ++i) {
    builder.AppendInt64(0, i);
    builder.AppendInt32(1, static_cast<int32_t>(i % 7));
    builder.AppendString(2, "row " + std::to_string(i));
  }
  return consumer.OnBatch(builder.Finish());
}

// The indexes of each table (name -> columns in index order), read through a
// connection of its own, as the query engine would see them.
std::map<std::string, std::vector<std::vector<std::string>>> IndexesOf(const Ingestion& ingestion) {
  std::map<std::string, std::vector<std::vector<std::string>>> out;
  for (const std::string& uri : ingestion.LaneUris()) {
    auto db =
        OpenDatabase("file:" + uri + "?vfs=memdb", SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, "lane");
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) continue;
    auto indexes = Prepare(db->get(),
                           "SELECT tbl_name, name FROM sqlite_schema WHERE type = 'index' "
                           "ORDER BY tbl_name, name");
    EXPECT_TRUE(indexes.ok());
    while (sqlite3_step(indexes->get()) == SQLITE_ROW) {
      const std::string table =
          reinterpret_cast<const char*>(sqlite3_column_text(indexes->get(), 0));
      const std::string index =
          reinterpret_cast<const char*>(sqlite3_column_text(indexes->get(), 1));
      auto info = Prepare(db->get(), "SELECT name FROM pragma_index_info(" +
                                         QuoteIdentifier(index) + ") ORDER BY seqno");
      EXPECT_TRUE(info.ok());
      std::vector<std::string> columns;
      while (sqlite3_step(info->get()) == SQLITE_ROW) {
        columns.push_back(reinterpret_cast<const char*>(sqlite3_column_text(info->get(), 0)));
      }
      out[table].push_back(columns);
    }
  }
  return out;
}

TEST(IngestionKeys, IndexesTheReportedKeyColumnsOnly) {
  const std::vector<Source> sources = {
      {"keyed", R"(["id"])"}, {"composite", R"(["region","id"])"},    {"plain", ""},
      {"malformed", "id"},    {"unknown_column", R"(["id","nope"])"},
  };
  std::vector<std::string> names;
  for (const auto& s : sources) names.push_back(s.name);
  IngestOptions options;
  options.max_lanes = 2;  // two lanes build at once
  Ingestion ingestion(names, "ingestion-keys-test", options);
  ASSERT_TRUE(
      ingestion
          .Run([&](size_t i,
                   sdk::BatchConsumer& consumer) { return PullRows(sources[i], 500, consumer); },
               nullptr)
          .ok());
  ASSERT_TRUE(ingestion.PublishTables().ok());
  EXPECT_THAT(IndexesOf(ingestion), IsEmpty());

  std::vector<std::string> warnings;
  ingestion.BuildKeyIndexes([&](const std::string& w) { warnings.push_back(w); });
  auto indexes = IndexesOf(ingestion);
  EXPECT_THAT(indexes["keyed"], ElementsAre(ElementsAre("id")));
  EXPECT_THAT(indexes["composite"], ElementsAre(ElementsAre("region", "id")));
  EXPECT_EQ(indexes.count("plain"), 0u);
  EXPECT_EQ(indexes.count("malformed"), 0u);
  EXPECT_EQ(indexes.count("unknown_column"), 0u);
  ASSERT_THAT(warnings, SizeIs(2));
  EXPECT_THAT(warnings[0] + warnings[1], HasSubstr("dataset malformed: key not indexed"));
  EXPECT_THAT(warnings[0] + warnings[1], HasSubstr("'nope' is not one of its columns"));

  // The planner uses it for the join the benchmark runs.
  auto lane = OpenDatabase("file:" + ingestion.LaneUris()[0] + "?vfs=memdb",
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, "lane");
  ASSERT_TRUE(lane.ok());
  auto plan = Prepare(lane->get(),
                      "EXPLAIN QUERY PLAN SELECT count(*) FROM plain o JOIN keyed c "
                      "ON c.id = o.id + 0");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::string details;
  while (sqlite3_step(plan->get()) == SQLITE_ROW) {
    details += reinterpret_cast<const char*>(sqlite3_column_text(plan->get(), 3));
    details += "\n";
  }
  EXPECT_THAT(details, HasSubstr("_airlock_key_0"));
  EXPECT_THAT(details, ::testing::Not(HasSubstr("AUTOMATIC")));
}

TEST(IngestionKeys, AnIndexBeyondTheMemoryBoundIsLeftOut) {
  const std::vector<Source> sources = {{"keyed", R"(["label"])"}};
  IngestOptions options;
  options.max_memory_bytes = int64_t{3} << 20;
  Ingestion ingestion({"keyed"}, "ingestion-keys-bound-test", options);
  // Rows up to the bound, leaving less room than an index on `label` takes.
  ASSERT_TRUE(
      ingestion
          .Run([&](size_t i,
                   sdk::BatchConsumer& consumer) { return PullRows(sources[i], 120000, consumer); },
               nullptr)
          .ok());
  ASSERT_TRUE(ingestion.PublishTables().ok());
  const int64_t before = ingestion.data_bytes();
  ASSERT_LT(before, options.max_memory_bytes);
  ASSERT_GT(before * 3 / 2, options.max_memory_bytes) << "the data should leave little room";
  std::vector<std::string> warnings;
  ingestion.BuildKeyIndexes([&](const std::string& w) { warnings.push_back(w); });
  EXPECT_THAT(IndexesOf(ingestion), IsEmpty());
  ASSERT_THAT(warnings, SizeIs(1));
  EXPECT_THAT(warnings[0], HasSubstr("dataset keyed: key not indexed"));
  EXPECT_LE(ingestion.data_bytes(), options.max_memory_bytes);
}

}  // namespace
}  // namespace airlock::enclave
