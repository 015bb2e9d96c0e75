// Ingestion's use of reported keys: a table whose schema carries
// "airlock.key" is stored in the key's order (a WITHOUT ROWID table whose
// primary key is the key); anything else is an ordinary table, and a key
// that turns out not to be one never costs a row.
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

// Delivers `rows` rows of (id int64, region int32, label utf8) per dataset,
// in batches of `batch_rows`.
Status PullRows(const Source& source, int64_t rows, sdk::BatchConsumer& consumer,
                int64_t batch_rows = 1'000'000) {
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
    if ((i + 1) % batch_rows == 0 || i + 1 == rows) {
      AIRLOCK_RETURN_IF_ERROR(consumer.OnBatch(builder.Finish()));
    }
  }
  return Status::Ok();
}

// Each table's primary key columns, in key order, read through a connection
// of its own as the query engine would see them; only tables stored WITHOUT
// ROWID have one (the reported key is never declared otherwise).
std::map<std::string, std::vector<std::string>> ClusteringKeysOf(const Ingestion& ingestion) {
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& uri : ingestion.LaneUris()) {
    auto db =
        OpenDatabase("file:" + uri + "?vfs=memdb", SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, "lane");
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) continue;
    auto tables = Prepare(db->get(),
                          "SELECT name, sql LIKE '%WITHOUT ROWID' FROM sqlite_schema "
                          "WHERE type = 'table' ORDER BY name");
    EXPECT_TRUE(tables.ok());
    while (sqlite3_step(tables->get()) == SQLITE_ROW) {
      const std::string table =
          reinterpret_cast<const char*>(sqlite3_column_text(tables->get(), 0));
      const bool clustered = sqlite3_column_int(tables->get(), 1) != 0;
      auto info = Prepare(db->get(), "SELECT name FROM pragma_table_info(" +
                                         QuoteIdentifier(table) + ") WHERE pk > 0 ORDER BY pk");
      EXPECT_TRUE(info.ok());
      std::vector<std::string> columns;
      while (sqlite3_step(info->get()) == SQLITE_ROW) {
        columns.push_back(reinterpret_cast<const char*>(sqlite3_column_text(info->get(), 0)));
      }
      EXPECT_EQ(clustered, !columns.empty()) << table;
      if (!columns.empty()) out[table] = columns;
    }
  }
  return out;
}

// Every row of a query on lane 0, as text, one string per row.
std::vector<std::string> Rows(const Ingestion& ingestion, const std::string& sql) {
  std::vector<std::string> rows;
  auto db = OpenDatabase("file:" + ingestion.LaneUris()[0] + "?vfs=memdb",
                         SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, "lane");
  EXPECT_TRUE(db.ok());
  if (!db.ok()) return rows;
  auto stmt = Prepare(db->get(), sql);
  EXPECT_TRUE(stmt.ok()) << stmt.status().ToString();
  if (!stmt.ok()) return rows;
  while (sqlite3_step(stmt->get()) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(stmt->get()); ++c) {
      const unsigned char* text = sqlite3_column_text(stmt->get(), c);
      row += (c ? "|" : "") + std::string(text ? reinterpret_cast<const char*>(text) : "NULL");
    }
    rows.push_back(row);
  }
  return rows;
}

std::vector<std::string> Warnings(const Ingestion& ingestion) {
  std::vector<std::string> warnings;
  ingestion.ReportKeys([&](const std::string& w) { warnings.push_back(w); });
  return warnings;
}

TEST(IngestionKeys, StoresTablesInTheReportedKeysOrderOnly) {
  const std::vector<Source> sources = {
      {"keyed", R"(["id"])"}, {"composite", R"(["region","id"])"},    {"plain", ""},
      {"malformed", "id"},    {"unknown_column", R"(["id","nope"])"},
  };
  std::vector<std::string> names;
  for (const auto& s : sources) names.push_back(s.name);
  IngestOptions options;
  options.max_lanes = 1;  // every table on lane 0, where Rows reads
  Ingestion ingestion(names, "ingestion-keys-test", options);
  ASSERT_TRUE(
      ingestion
          .Run([&](size_t i,
                   sdk::BatchConsumer& consumer) { return PullRows(sources[i], 500, consumer); },
               nullptr)
          .ok());
  ASSERT_TRUE(ingestion.PublishTables().ok());

  auto keys = ClusteringKeysOf(ingestion);
  EXPECT_THAT(keys["keyed"], ElementsAre("id"));
  EXPECT_THAT(keys["composite"], ElementsAre("region", "id"));
  EXPECT_EQ(keys.count("plain"), 0u);
  EXPECT_EQ(keys.count("malformed"), 0u);
  EXPECT_EQ(keys.count("unknown_column"), 0u);
  const auto warnings = Warnings(ingestion);
  ASSERT_THAT(warnings, SizeIs(2));
  EXPECT_THAT(warnings[0] + warnings[1], HasSubstr("dataset malformed: key not used"));
  EXPECT_THAT(warnings[0] + warnings[1],
              HasSubstr("dataset unknown_column: key not used: 'nope' is not one of its columns"));
  // No index beside the rows: the table is the key's b-tree.
  EXPECT_THAT(Rows(ingestion, "SELECT name FROM sqlite_schema WHERE type = 'index'"), IsEmpty());
  // Every row is there, with its declared types, stored in key order.
  EXPECT_THAT(Rows(ingestion, "SELECT count(*), sum(id), min(label) FROM composite"),
              ElementsAre("500|124750|row 0"));
  EXPECT_EQ(Rows(ingestion, "SELECT region, id FROM composite LIMIT 2"),
            (std::vector<std::string>{"0|0", "0|7"}));
  EXPECT_THAT(Rows(ingestion, "SELECT type FROM pragma_table_info('keyed')"),
              ElementsAre("BIGINT", "INT", "TEXT"));

  // The planner searches the key for the join the benchmark runs.
  const std::string plan = [&] {
    std::string details;
    for (const auto& row : Rows(ingestion,
                                "EXPLAIN QUERY PLAN SELECT count(*) FROM plain o "
                                "JOIN keyed c ON c.id = o.id + 0")) {
      details += row + "\n";
    }
    return details;
  }();
  EXPECT_THAT(plan, HasSubstr("USING PRIMARY KEY (id=?)"));
  EXPECT_THAT(plan, ::testing::Not(HasSubstr("AUTOMATIC")));
}

TEST(IngestionKeys, ADeclaredKeyOrdersASourceThatReportsNoneAndOverridesAReport) {
  // "file" reports no key, "reported" reports ["region"] (which repeats),
  // "typo" declares a column the table lacks: declarations are used in
  // place of reports, and checked the same way.
  const std::vector<Source> sources = {{"file", ""}, {"reported", R"(["region"])"}, {"typo", ""}};
  IngestOptions options;
  options.max_lanes = 1;
  options.declared_keys = {{"id"}, {"region", "id"}, {"nope"}};
  Ingestion ingestion({"file", "reported", "typo"}, "ingestion-keys-declared-test", options);
  ASSERT_TRUE(
      ingestion
          .Run([&](size_t i,
                   sdk::BatchConsumer& consumer) { return PullRows(sources[i], 300, consumer); },
               nullptr)
          .ok());
  ASSERT_TRUE(ingestion.PublishTables().ok());
  auto keys = ClusteringKeysOf(ingestion);
  EXPECT_THAT(keys["file"], ElementsAre("id"));
  EXPECT_THAT(keys["reported"], ElementsAre("region", "id"));
  EXPECT_EQ(keys.count("typo"), 0u);
  EXPECT_THAT(Warnings(ingestion),
              ElementsAre("dataset typo: key not used: 'nope' is not one of its columns"));
  for (const char* table : {"file", "reported", "typo"}) {
    EXPECT_THAT(Rows(ingestion, std::string("SELECT count(*), sum(id) FROM ") + table),
                ElementsAre("300|44850"))
        << table;
  }
  EXPECT_EQ(Rows(ingestion, "SELECT region, id FROM reported LIMIT 2"),
            (std::vector<std::string>{"0|0", "0|7"}));
}

TEST(IngestionKeys, AKeyThatRepeatsLosesTheOrderButNoRow) {
  // "region" is reported as the key but repeats after 7 rows: the second
  // batch is refused by the key, so the rows so far move to an ordinary
  // table and the pull goes on.
  const std::vector<Source> sources = {{"claims", R"(["region"])"}, {"fine", R"(["id"])"}};
  IngestOptions options;
  options.max_lanes = 1;
  Ingestion ingestion({"claims", "fine"}, "ingestion-keys-repeat-test", options);
  ASSERT_TRUE(ingestion
                  .Run(
                      [&](size_t i, sdk::BatchConsumer& consumer) {
                        return PullRows(sources[i], 2000, consumer, i == 0 ? 5 : 300);
                      },
                      nullptr)
                  .ok());
  ASSERT_TRUE(ingestion.PublishTables().ok());
  EXPECT_THAT(Rows(ingestion, "SELECT count(*), sum(id), count(DISTINCT label) FROM claims"),
              ElementsAre("2000|1999000|2000"));
  auto keys = ClusteringKeysOf(ingestion);
  EXPECT_EQ(keys.count("claims"), 0u);
  EXPECT_THAT(keys["fine"], ElementsAre("id"));
  EXPECT_THAT(Rows(ingestion, "SELECT type FROM pragma_table_info('claims')"),
              ElementsAre("BIGINT", "INT", "TEXT"));
  EXPECT_THAT(Warnings(ingestion),
              ElementsAre("dataset claims: key not used: a key value repeats or is missing, so "
                          "its rows are not stored in key order"));
}

}  // namespace
}  // namespace airlock::enclave
