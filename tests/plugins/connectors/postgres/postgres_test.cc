// The postgres connector against a real PostgreSQL 15 server: types compared
// value by value with psql, scope pushdown (columns, parameterised row
// filter, masks computed by the server), TLS, error codes, cancellation and
// bounded streaming.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <thread>

#include "airlock/cpp/masking.hpp"
#include "airlock/cpp/scope.hpp"
#include "tests/plugins/connectors/postgres/pg_test_env.h"

namespace airlock::pgtest {
namespace {

using Clock = std::chrono::steady_clock;

Json Dataset(const std::string& name, const std::string& table) {
  return {{"name", name}, {"table", table}};
}

Json PullDoc(const std::string& dataset, const Json& scope = Json::object()) {
  return {{"dataset", dataset}, {"scope", scope}};
}

Json DefaultDatasets() {
  return Json::array(
      {Dataset("all_types", "public.all_types"),
       Dataset("people", "people"),
       Dataset("pointy", "public.pointy"),
       Dataset("big", "public.big"),
       Dataset("secret_stuff", "public.secret_stuff"),
       Dataset("ghost", "public.ghost"),
       {{"name", "rich"}, {"query", "SELECT id, name FROM people WHERE balance > 50;"}},
       {{"name", "sleepy"}, {"query", "SELECT 1 AS x FROM pg_sleep(30)"}},
       {{"name", "tls_check"},
        {"query", "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"}}});
}

// A pull that must succeed.
Collector MustPull(const Json& pull, const Json& overrides = Json::object()) {
  Collector collector;
  PullOutcome outcome = Pull(Config(DefaultDatasets(), overrides), pull, collector);
  EXPECT_EQ(outcome.status, AIRLOCK_OK) << outcome.message;
  return collector;
}

std::vector<int64_t> Ids(const Collector& c) {
  std::vector<int64_t> ids;
  const size_t col = c.Column("id");
  for (const auto& row : c.rows) ids.push_back(row[col].is_null() ? -1 : row[col].get<int64_t>());
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::vector<Json>> SortedById(const Collector& c) {
  auto rows = c.rows;
  const size_t col = c.Column("id");
  std::sort(rows.begin(), rows.end(), [col](const auto& a, const auto& b) {
    return a[col].template get<int64_t>() < b[col].template get<int64_t>();
  });
  return rows;
}

// ---------------------------------------------------------------------------
// Types, compared with psql.

constexpr char kSessionOptions[] =
    "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=iso_8601 -c extra_float_digits=1";

// Does our delivered cell (JSON as Collector makes it) say what psql printed?
::testing::AssertionResult SameAsPsql(const arrow::Field& field, const std::string& column,
                                      const Json& ours, const std::optional<std::string>& psql) {
  auto fail = [&](const std::string& why) {
    return ::testing::AssertionFailure() << column << ": ours " << ours.dump() << ", psql "
                                         << (psql ? *psql : "NULL") << " (" << why << ")";
  };
  if (!psql) return ours.is_null() ? ::testing::AssertionSuccess() : fail("expected NULL");
  if (ours.is_null()) return fail("we delivered NULL");
  const std::string& text = *psql;
  switch (field.type) {
    case arrow::Type::kInt32:
    case arrow::Type::kInt64:
      return std::to_string(ours.get<int64_t>()) == text ? ::testing::AssertionSuccess()
                                                         : fail("integer");
    case arrow::Type::kBool:
      return (ours.get<bool>() ? "t" : "f") == text ? ::testing::AssertionSuccess() : fail("bool");
    case arrow::Type::kFloat64: {
      std::string expected;
      if (text == "NaN") expected = "nan";
      if (text == "Infinity") expected = "inf";
      if (text == "-Infinity") expected = "-inf";
      if (!expected.empty()) {
        return ours == Json(expected) ? ::testing::AssertionSuccess() : fail("special float");
      }
      if (!ours.is_number()) return fail("not a number");
      // float4 columns print float4's shortest text; compare in float4.
      const double parsed = column == "c_float4"
                                ? static_cast<double>(std::strtof(text.c_str(), nullptr))
                                : std::strtod(text.c_str(), nullptr);
      return ours.get<double>() == parsed ? ::testing::AssertionSuccess() : fail("float");
    }
    case arrow::Type::kDate32: {
      int64_t days = 0;
      if (text == "infinity") {
        days = std::numeric_limits<int32_t>::max();
      } else if (text == "-infinity") {
        days = std::numeric_limits<int32_t>::min();
      } else {
        auto parsed = scope::ParseDate32(text);
        if (!parsed) return fail("psql date unparsable");
        days = *parsed;
      }
      return ours.get<int64_t>() == days ? ::testing::AssertionSuccess() : fail("date");
    }
    case arrow::Type::kTime64Micros: {
      auto parsed = text == "24:00:00" ? std::optional<int64_t>(86400LL * 1000000)
                                       : scope::ParseTime64Micros(text);
      if (!parsed) return fail("psql time unparsable");
      return ours.get<int64_t>() == *parsed ? ::testing::AssertionSuccess() : fail("time");
    }
    case arrow::Type::kTimestampMicros: {
      int64_t micros = 0;
      if (text == "infinity") {
        micros = std::numeric_limits<int64_t>::max();
      } else if (text == "-infinity") {
        micros = std::numeric_limits<int64_t>::min();
      } else {
        std::string naive = text;
        if (!field.timezone.empty()) {
          if (!naive.ends_with("+00")) return fail("timestamptz not shown in UTC");
          naive.resize(naive.size() - 3);
        }
        auto parsed = scope::ParseTimestampMicros(naive);
        if (!parsed) return fail("psql timestamp unparsable");
        micros = *parsed;
      }
      return ours.get<int64_t>() == micros ? ::testing::AssertionSuccess() : fail("timestamp");
    }
    default:
      return ours == Json(text) ? ::testing::AssertionSuccess() : fail("text");
  }
}

TEST(PostgresConnector, EveryTypeMatchesPsqlValueByValue) {
  Collector c = MustPull(PullDoc("all_types"));
  ASSERT_EQ(c.rows.size(), 5u);
  // The mapping README.md documents.
  const std::vector<std::pair<std::string, std::string>> expected_types = {
      {"id", "int32"},
      {"c_int2", "int32"},
      {"c_int4", "int32"},
      {"c_int8", "int64"},
      {"c_numeric", "utf8"},
      {"c_float4", "float64"},
      {"c_float8", "float64"},
      {"c_bool", "bool"},
      {"c_text", "utf8"},
      {"c_varchar", "utf8"},
      {"c_char", "utf8"},
      {"c_date", "date32"},
      {"c_time", "time64[us]"},
      {"c_timestamp", "timestamp[us]"},
      {"c_timestamptz", "timestamp[us]"},
      {"c_interval", "utf8"},
      {"c_uuid", "utf8"},
      {"c_json", "utf8"},
      {"c_jsonb", "utf8"},
      {"c_bytea", "binary"},
      {"c_int_array", "utf8"},
      {"c_text_array", "utf8"},
      {"c_enum", "utf8"},
      {"c_domain", "int32"}};
  ASSERT_EQ(c.fields.size(), expected_types.size());
  for (size_t i = 0; i < c.fields.size(); ++i) {
    EXPECT_EQ(c.fields[i].name, expected_types[i].first);
    EXPECT_EQ(arrow::TypeName(c.fields[i].type), expected_types[i].second) << c.fields[i].name;
  }
  EXPECT_EQ(c.fields[c.Column("c_timestamptz")].timezone, "UTC");
  EXPECT_EQ(c.fields[c.Column("c_timestamp")].timezone, "");

  std::string select;
  for (const auto& f : c.fields) {
    if (!select.empty()) select += ", ";
    select += f.name.ends_with("_array") ? "array_to_json(" + f.name + ")" : f.name;
  }
  const test::PgRows psql = Shared().cluster->PsqlRows(
      "SELECT " + select + " FROM all_types ORDER BY id", "postgres", kSessionOptions);
  ASSERT_EQ(psql.size(), 5u);
  const auto ours = SortedById(c);
  for (size_t r = 0; r < ours.size(); ++r) {
    ASSERT_EQ(psql[r].size(), c.fields.size());
    for (size_t col = 0; col < c.fields.size(); ++col) {
      EXPECT_TRUE(SameAsPsql(c.fields[col], c.fields[col].name, ours[r][col], psql[r][col]))
          << "row id " << ours[r][0];
    }
  }
  // Spot checks that do not depend on psql.
  EXPECT_EQ(ours[2][c.Column("c_int8")], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(ours[3][c.Column("c_text")], "ünïcødé ☃ 🎉 \"q\" \\ back");
  EXPECT_EQ(ours[2][c.Column("c_text")], "");
  EXPECT_EQ(ours[3][c.Column("c_uuid")], "ffffffff-ffff-ffff-ffff-ffffffffffff");
  EXPECT_EQ(ours[0][c.Column("c_int_array")], "[1,2,3]");
  EXPECT_EQ(ours[0][c.Column("c_char")], "ab   ");                  // char(5) keeps its padding
  EXPECT_EQ(ours[0][c.Column("c_timestamptz")], 1709202896000000);  // 10:34:56Z
  for (size_t col = 1; col < c.fields.size(); ++col) EXPECT_TRUE(ours[1][col].is_null());
}

TEST(PostgresConnector, DescribeReportsColumnsTypesAndObjects) {
  Json catalog;
  PullOutcome outcome = Describe(Config(Json::array({Dataset("all_types", "public.all_types"),
                                                     Dataset("pointy", "pointy"),
                                                     Dataset("ghost", "public.ghost"),
                                                     {{"name", "rich"},
                                                      {"query", "SELECT id, name FROM people"},
                                                      {"description", "wealthy"}}})),
                                 &catalog);
  ASSERT_EQ(outcome.status, AIRLOCK_OK) << outcome.message;
  ASSERT_EQ(catalog["datasets"].size(), 3u);
  const Json& types = catalog["datasets"][0];
  EXPECT_EQ(types["object"], "public.all_types");
  EXPECT_EQ(types["columns"].size(), 24u);
  EXPECT_EQ(types["columns"][14],
            Json({{"name", "c_timestamptz"}, {"type", "timestamp[us, tz=UTC]"}}));
  EXPECT_EQ(types["columns"][4], Json({{"name", "c_numeric"}, {"type", "utf8"}}));
  EXPECT_EQ(catalog["datasets"][1]["columns"][1],
            Json({{"name", "p"}, {"type", "unsupported:point"}}));
  EXPECT_EQ(catalog["datasets"][2]["object"], "query:rich");
  EXPECT_EQ(catalog["datasets"][2]["description"], "wealthy");
  EXPECT_EQ(catalog["datasets"][2]["columns"].size(), 2u);
}

// The catalog's rows per dataset name; -1 where the describe left it out.
std::map<std::string, int64_t> DescribedRows(const Json& datasets) {
  Json catalog;
  PullOutcome outcome = Describe(Config(datasets), &catalog);
  EXPECT_EQ(outcome.status, AIRLOCK_OK) << outcome.message;
  std::map<std::string, int64_t> rows;
  for (const auto& d : catalog["datasets"]) rows[d["name"]] = d.value("rows", int64_t{-1});
  return rows;
}

TEST(PostgresConnector, DescribeCountsRowsOfSmallTablesExactly) {
  // "fresh" is never measured by ANALYZE (reltuples -1): only a count says 7.
  Shared().cluster->Exec(
      "SET client_min_messages = warning;"
      "DROP TABLE IF EXISTS fresh; DROP VIEW IF EXISTS people_view;"
      "CREATE TABLE fresh (id int4) WITH (autovacuum_enabled = false);"
      "INSERT INTO fresh SELECT generate_series(1, 7);"
      "CREATE VIEW people_view AS SELECT id, name FROM people;"
      "GRANT SELECT ON fresh, people_view TO reader;");
  const Json datasets = Json::array({Dataset("people", "people"),
                                     Dataset("big", "public.big"),
                                     Dataset("fresh", "fresh"),
                                     Dataset("view", "people_view"),
                                     Dataset("secret_stuff", "public.secret_stuff"),
                                     {{"name", "rich"}, {"query", "SELECT id FROM people"}}});
  // A view and a named query would have to be run to be counted; without
  // SELECT the role is not told.
  EXPECT_EQ(DescribedRows(datasets), (std::map<std::string, int64_t>{{"people", 5},
                                                                     {"big", 50000},
                                                                     {"fresh", 7},
                                                                     {"view", -1},
                                                                     {"secret_stuff", -1},
                                                                     {"rich", -1}}));
  // Counted, not taken from the statistics: ANALYZE says 7, the table has 10.
  Shared().cluster->Exec("ANALYZE fresh; INSERT INTO fresh VALUES (8), (9), (10);");
  EXPECT_EQ(DescribedRows(datasets)["fresh"], 10);
  // Row-level security: the count is of the rows the role may see.
  Shared().cluster->Exec(
      "ALTER TABLE fresh ENABLE ROW LEVEL SECURITY;"
      "CREATE POLICY low ON fresh FOR SELECT TO reader USING (id <= 3);");
  EXPECT_EQ(DescribedRows(datasets)["fresh"], 3);
  Shared().cluster->Exec("DROP TABLE fresh; DROP VIEW people_view;");
}

TEST(PostgresConnector, DescribeEstimatesLargeTablesOnlyOnceMeasured) {
  // Four rows of about 1.9 kB (inline, under the TOAST threshold) per 8 kB
  // page: 9000 pages, over the 64 MiB counted in full.
  Shared().cluster->Exec(
      "SET client_min_messages = warning; DROP TABLE IF EXISTS wide;"
      "CREATE UNLOGGED TABLE wide (id int4, pad text) WITH (autovacuum_enabled = false);"
      "INSERT INTO wide SELECT g, repeat('x', 1900) FROM generate_series(1, 36000) g;"
      "GRANT SELECT ON wide TO reader;");
  ASSERT_GT(std::stoll(*Shared().cluster->Query("SELECT pg_relation_size('wide')")[0][0]),
            int64_t{64} << 20);
  const Json datasets = Json::array({Dataset("wide", "public.wide")});
  // Never analyzed: too large to count, and no estimate to give.
  EXPECT_EQ(DescribedRows(datasets)["wide"], -1);
  // ANALYZE read every page (fewer than its 30000-page sample): exact.
  Shared().cluster->Exec("ANALYZE wide");
  EXPECT_EQ(DescribedRows(datasets)["wide"], 36000);
  // 900 pages more since: the measured density times today's pages, as the
  // planner estimates (reltuples alone still says 36000).
  Shared().cluster->Exec(
      "INSERT INTO wide SELECT g, repeat('x', 1900) FROM generate_series(36001, 39600) g");
  EXPECT_EQ(DescribedRows(datasets)["wide"], 39600);
  // A role that may not read the table is not told, even by an estimate.
  Shared().cluster->Exec("REVOKE SELECT ON wide FROM reader");
  EXPECT_EQ(DescribedRows(datasets)["wide"], -1);
  // Under row-level security the estimate would count rows the role cannot see.
  Shared().cluster->Exec(
      "GRANT SELECT ON wide TO reader; ALTER TABLE wide ENABLE ROW LEVEL SECURITY");
  EXPECT_EQ(DescribedRows(datasets)["wide"], -1);
  Shared().cluster->Exec("DROP TABLE wide");
}

// ---------------------------------------------------------------------------
// Scope.

TEST(PostgresConnector, DeliversOnlyScopedColumnsInSourceOrder) {
  Collector c = MustPull(PullDoc("people", {{"columns", {"name", "id"}}}));
  ASSERT_EQ(c.fields.size(), 2u);
  EXPECT_EQ(c.fields[0].name, "id");
  EXPECT_EQ(c.fields[1].name, "name");
  EXPECT_EQ(Ids(c), (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

// The SDK's value for a delivered cell (Collector's JSON form).
scope::Value ToValue(const Json& cell, const arrow::Field& field) {
  if (cell.is_null()) return scope::Value::Null();
  switch (field.type) {
    case arrow::Type::kBool:
      return scope::Value::Bool(cell.get<bool>());
    case arrow::Type::kInt32:
    case arrow::Type::kInt64:
      return scope::Value::Int64(cell.get<int64_t>());
    case arrow::Type::kFloat64:
      if (cell.is_string()) {
        const std::string& s = cell.get_ref<const std::string&>();
        if (s == "nan") return scope::Value::Float64(std::nan(""));
        return scope::Value::Float64(s == "inf" ? INFINITY : -INFINITY);
      }
      return scope::Value::Float64(cell.get<double>());
    case arrow::Type::kDate32:
      return scope::Value::Date32(cell.get<int32_t>());
    case arrow::Type::kTimestampMicros:
      return scope::Value::Timestamp(cell.get<int64_t>());
    case arrow::Type::kTime64Micros:
      return scope::Value::Time64(cell.get<int64_t>());
    default:
      return scope::Value::String(cell.get_ref<const std::string&>());
  }
}

// Ids the SDK's own row filter keeps when it evaluates `filter` on the
// unfiltered delivery: the pushdown must agree with it exactly.
std::vector<int64_t> SdkFilteredIds(const Json& filter) {
  Collector all = MustPull(PullDoc("people"));
  std::vector<RowCondition> conditions;
  for (const auto& c : filter) conditions.push_back(*RowCondition::FromJson(c));
  auto compiled = scope::RowFilter::Compile(conditions, all.fields);
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  std::vector<int64_t> ids;
  for (const auto& row : all.rows) {
    std::vector<scope::Value> values;
    for (size_t i = 0; i < row.size(); ++i) values.push_back(ToValue(row[i], all.fields[i]));
    if (compiled->Matches(values)) ids.push_back(row[0].get<int64_t>());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(PostgresConnector, ReportsThePrimaryKeyOnlyWhenEveryKeyColumnIsDelivered) {
  const Json datasets = Json::array({Dataset("keyed", "public.keyed"),
                                     Dataset("keyed_view", "public.keyed_view"),
                                     Dataset("all_types", "public.all_types"),
                                     Dataset("people", "people"),
                                     {{"name", "keyed_query"}, {"query", "SELECT * FROM keyed"}}});
  auto key_of = [&](const Json& pull) -> std::optional<Json> {
    Collector c;
    PullOutcome outcome = Pull(Config(datasets), pull, c);
    EXPECT_EQ(outcome.status, AIRLOCK_OK) << outcome.message;
    EXPECT_FALSE(c.rows.empty());
    if (!c.key_metadata.has_value()) return std::nullopt;
    return Json::parse(*c.key_metadata);
  };
  // Key order, not column order.
  EXPECT_EQ(key_of(PullDoc("keyed")), Json::array({"id", "region"}));
  EXPECT_EQ(key_of(PullDoc("all_types")), Json::array({"id"}));
  EXPECT_EQ(key_of(PullDoc("keyed", {{"columns", {"region", "id"}}})),
            Json::array({"id", "region"}));
  // A key column narrowed away or masked: the delivered rows have no key.
  EXPECT_EQ(key_of(PullDoc("keyed", {{"columns", {"id", "note"}}})), std::nullopt);
  EXPECT_EQ(key_of(PullDoc("keyed", {{"masks", {{"region", "hash"}}}})), std::nullopt);
  // No primary key, a view, a named query.
  EXPECT_EQ(key_of(PullDoc("people")), std::nullopt);
  EXPECT_EQ(key_of(PullDoc("keyed_view")), std::nullopt);
  EXPECT_EQ(key_of(PullDoc("keyed_query")), std::nullopt);
}

TEST(PostgresConnector, RowFilterPushdownAgreesWithTheSdkSemantics) {
  const std::vector<std::pair<Json, std::vector<int64_t>>> cases = {
      {Json::array({{{"column", "name"}, {"op", "eq"}, {"value", "Bob"}}}), {2}},
      {Json::array({{{"column", "name"}, {"op", "ne"}, {"value", "Bob"}}}), {1, 3, 5}},
      {Json::array({{{"column", "balance"}, {"op", "lt"}, {"value", "5"}}}), {1, 2, 3, 4}},
      {Json::array({{{"column", "born"}, {"op", "gt"}, {"value", "1950-01-01"}}}), {2, 4, 5}},
      {Json::array({{{"column", "seen"}, {"op", "ge"}, {"value", "2024-01-01T10:00:00Z"}}}),
       {1, 2}},
      {Json::array({{{"column", "seen"}, {"op", "lt"}, {"value", "2000-01-01T00:00:00+00:00"}}}),
       {}},
      {Json::array({{{"column", "seen"}, {"op", "eq"}, {"value", "2000-01-01T00:00:00Z"}}}), {4}},
      {Json::array({{{"column", "score"}, {"op", "lt"}, {"value", 2}}}), {1, 4}},
      {Json::array({{{"column", "score"}, {"op", "ne"}, {"value", 1.5}}}), {3, 4, 5}},
      {Json::array({{{"column", "id"}, {"op", "in"}, {"value", {1, 3, 99}}}}), {1, 3}},
      {Json::array({{{"column", "id"}, {"op", "not_in"}, {"value", {1, 2}}}}), {3, 4, 5}},
      {Json::array({{{"column", "id"}, {"op", "in"}, {"value", Json::array()}}}), {}},
      {Json::array({{{"column", "ssn"}, {"op", "not_in"}, {"value", Json::array()}}}),
       {1, 2, 4, 5}},
      {Json::array({{{"column", "id"}, {"op", "in"}, {"value", {1, 2.5, "3"}}}}), {1, 3}},
      {Json::array({{{"column", "id"}, {"op", "gt"}, {"value", 2.5}}}), {3, 4, 5}},
      {Json::array({{{"column", "name"}, {"op", "like"}, {"value", "%o%"}}}), {1, 2, 3}},
      {Json::array({{{"column", "name"}, {"op", "like"}, {"value", "Chlo_"}}}), {3}},
      {Json::array({{{"column", "name"}, {"op", "like"}, {"value", "x\\'%"}}}), {5}},
      {Json::array({{{"column", "name"}, {"op", "is_null"}}}), {4}},
      {Json::array({{{"column", "ssn"}, {"op", "not_null"}}}), {1, 2, 4, 5}},
      {Json::array({{{"column", "odd \" name"}, {"op", "ge"}, {"value", "b"}}}), {2, 4, 5}},
      {Json::array({{{"column", "id"}, {"op", "ge"}, {"value", 2}},
                    {{"column", "score"}, {"op", "not_null"}}}),
       {3, 4, 5}},
  };
  for (const auto& [filter, expected] : cases) {
    Collector c = MustPull(PullDoc("people", {{"row_filter", filter}}));
    EXPECT_EQ(Ids(c), expected) << filter.dump();
    EXPECT_EQ(Ids(c), SdkFilteredIds(filter)) << filter.dump();
  }
}

TEST(PostgresConnector, FiltersWorkOnNamedQueries) {
  Collector c =
      MustPull(PullDoc("rich", {{"row_filter", {{{"column", "id"}, {"op", "ne"}, {"value", 1}}}}}));
  EXPECT_EQ(Ids(c), (std::vector<int64_t>{4}));
}

TEST(PostgresConnector, InjectionInAFilterValueIsOnlyData) {
  // The row whose name is literally the classic injection string.
  Collector hit = MustPull(PullDoc(
      "people", {{"row_filter", {{{"column", "name"}, {"op", "eq"}, {"value", "x' OR '1'='1"}}}}}));
  EXPECT_EQ(Ids(hit), (std::vector<int64_t>{5}));
  Collector none =
      MustPull(PullDoc("people", {{"row_filter",
                                   {{{"column", "name"},
                                     {"op", "in"},
                                     {"value", {"'; DROP TABLE people; --", "Bob') OR (1=1"}}}}}}));
  EXPECT_TRUE(none.rows.empty());
  EXPECT_EQ(Shared().cluster->Query("SELECT count(*) FROM people")[0][0], "5");
  // A number column with a SQL fragment is refused before anything runs.
  Collector bad;
  PullOutcome outcome =
      Pull(Config(DefaultDatasets()),
           PullDoc("people",
                   {{"row_filter", {{{"column", "id"}, {"op", "eq"}, {"value", "1 OR 1=1"}}}}}),
           bad);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_INVALID_ARGUMENT) << outcome.message;
}

TEST(PostgresConnector, InjectionInAColumnNameIsRefused) {
  for (const Json& scope :
       {Json{{"row_filter", {{{"column", "name\" = 'Bob' OR \"1"}, {"op", "eq"}, {"value", "x"}}}}},
        Json{{"columns", {"id\", ssn, \"id"}}}, Json{{"masks", {{"id\" , ssn --", "redact"}}}}}) {
    Collector c;
    PullOutcome outcome = Pull(Config(DefaultDatasets()), PullDoc("people", scope), c);
    EXPECT_EQ(outcome.status, AIRLOCK_ERR_INVALID_ARGUMENT) << scope.dump();
    EXPECT_TRUE(c.rows.empty());
  }
}

TEST(PostgresConnector, MasksRunInTheSourceAndMatchTheSdk) {
  const Json scope = {{"columns", {"id", "name", "ssn", "balance", "born", "seen", "score"}},
                      {"masks",
                       {{"ssn", "hash"},
                        {"name", "last4"},
                        {"balance", "redact"},
                        {"born", "last4"},
                        {"seen", "hash"},
                        {"score", "hash"}}}};
  Collector c = MustPull(PullDoc("people", scope));
  for (const char* masked : {"name", "ssn", "balance", "born", "seen", "score"}) {
    EXPECT_EQ(c.fields[c.Column(masked)].type, arrow::Type::kUtf8) << masked;
  }
  const auto rows = SortedById(c);
  scope::Masker masker;
  auto sdk = [&masker](scope::MaskFunction fn, const scope::Value& v) -> Json {
    std::string out;
    if (!masker.Mask(fn, v, &out)) return nullptr;
    return out;
  };
  using scope::MaskFunction;
  using scope::Value;
  const std::vector<std::optional<std::string>> ssn = {"123-45-6789", "987-65-4321", std::nullopt,
                                                       "555-00-1111", "000-00-0000"};
  const std::vector<std::optional<std::string>> names = {"Ada Lovelace", "Bob", "Chloé",
                                                         std::nullopt, "x' OR '1'='1"};
  const std::vector<std::optional<std::string>> seen = {
      "2024-01-01T10:00:00Z", "2024-06-01T12:30:00.25Z", std::nullopt, "2000-01-01T00:00:00Z",
      "2010-10-10T10:10:10Z"};
  const std::vector<std::optional<std::string>> born = {"1815-12-10", "1990-06-01", std::nullopt,
                                                        "2000-01-01", "2010-10-10"};
  const std::vector<Value> score = {Value::Float64(1.5), Value::Null(),
                                    Value::Float64(std::nan("")), Value::Float64(-3),
                                    Value::Float64(10)};
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    EXPECT_EQ(row[c.Column("ssn")],
              ssn[i] ? sdk(MaskFunction::kHash, Value::String(*ssn[i])) : Json())
        << i;
    EXPECT_EQ(row[c.Column("name")],
              names[i] ? sdk(MaskFunction::kLast4, Value::String(*names[i])) : Json())
        << i;
    EXPECT_EQ(row[c.Column("balance")], "***");
    EXPECT_EQ(
        row[c.Column("born")],
        born[i] ? sdk(MaskFunction::kLast4, Value::Date32(*scope::ParseDate32(*born[i]))) : Json())
        << i;
    EXPECT_EQ(
        row[c.Column("seen")],
        seen[i] ? sdk(MaskFunction::kHash, Value::Timestamp(*scope::ParseTimestampMicros(*seen[i])))
                : Json())
        << i;
    EXPECT_EQ(row[c.Column("score")], sdk(MaskFunction::kHash, score[i])) << i;
  }
  EXPECT_EQ(rows[0][c.Column("name")], "****lace");

  // The statement the server ran never selects a masked column raw: once
  // the mask expressions are cut out, the column is not mentioned at all.
  const std::string log = Shared().cluster->ReadLog();
  const size_t at = log.rfind("DECLARE airlock_pull");
  ASSERT_NE(at, std::string::npos);
  std::string statement = log.substr(at, log.find('\n', at) - at);
  ASSERT_NE(statement.find("FROM \"people\""), std::string::npos) << statement;
  const std::string hashed_ssn =
      "encode(sha256(convert_to(CASE WHEN \"ssn\" IS NULL THEN NULL ELSE format('%s', \"ssn\") "
      "END, 'UTF8')), 'hex')";
  const std::string redacted_balance = "CASE WHEN \"balance\" IS NULL THEN NULL ELSE '***' END";
  for (const std::string& cut : {hashed_ssn, redacted_balance}) {
    const size_t pos = statement.find(cut);
    ASSERT_NE(pos, std::string::npos) << statement;
    statement.erase(pos, cut.size());
  }
  EXPECT_EQ(statement.find("\"ssn\""), std::string::npos) << statement;
  EXPECT_EQ(statement.find("\"balance\""), std::string::npos) << statement;
}

TEST(PostgresConnector, HashOfTypedColumnsMatchesTheSdkCanonicalText) {
  const Json scope = {
      {"columns", {"id", "c_int8", "c_bool", "c_time", "c_timestamp", "c_uuid", "c_numeric"}},
      {"masks",
       {{"c_int8", "hash"},
        {"c_bool", "hash"},
        {"c_time", "hash"},
        {"c_timestamp", "hash"},
        {"c_uuid", "hash"},
        {"c_numeric", "hash"}}}};
  Collector masked = MustPull(PullDoc("all_types", scope));
  Collector raw = MustPull(PullDoc("all_types", {{"columns", scope["columns"]}}));
  const auto m = SortedById(masked);
  const auto r = SortedById(raw);
  scope::Masker masker;
  for (size_t i = 0; i < r.size(); ++i) {
    for (size_t col = 1; col < raw.fields.size(); ++col) {
      const scope::Value v = ToValue(r[i][col], raw.fields[col]);
      std::string expected;
      if (raw.fields[col].type == arrow::Type::kTimestampMicros &&
          (v.i == std::numeric_limits<int64_t>::max() ||
           v.i == std::numeric_limits<int64_t>::min())) {
        continue;  // infinities have no canonical SDK text (README.md)
      }
      if (!masker.Mask(scope::MaskFunction::kHash, v, &expected)) {
        EXPECT_TRUE(m[i][col].is_null());
        continue;
      }
      EXPECT_EQ(m[i][col], expected) << raw.fields[col].name << " row " << i;
    }
  }
}

// ---------------------------------------------------------------------------
// TLS, credentials and error codes.

TEST(PostgresConnector, TlsVerifyFullSucceedsWithTheRightCaAndHostName) {
  for (const char* host : {"localhost", "127.0.0.1"}) {
    // The server reports the connector's own connection as encrypted.
    Collector c = MustPull(PullDoc("tls_check"), {{"host", host}});
    ASSERT_EQ(c.rows.size(), 1u) << host;
    EXPECT_EQ(c.rows[0][0], true) << host;
    EXPECT_TRUE(c.rows[0][1].get<std::string>().starts_with("TLS")) << c.rows[0][1];
  }
}

TEST(PostgresConnector, TlsVerifyFullFailsWithAnotherCa) {
  Collector c;
  PullOutcome outcome =
      Pull(Config(DefaultDatasets(), {{"ca_file", Shared().cluster->other_ca_file()}}),
           PullDoc("people"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_UNAVAILABLE) << outcome.message;
  EXPECT_NE(outcome.message.find("certificate"), std::string::npos) << outcome.message;
  EXPECT_TRUE(c.rows.empty());
}

TEST(PostgresConnector, BadPasswordIsUnauthenticatedWithoutTheSecret) {
  Collector c;
  const int resolved = Shared().host.resolved();
  PullOutcome outcome =
      Pull(Config(DefaultDatasets(), {{"password", std::string("env:") + kWrongPasswordEnv}}),
           PullDoc("people"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_UNAUTHENTICATED) << outcome.message;
  EXPECT_EQ(outcome.message.find(kWrongPassword), std::string::npos);
  EXPECT_EQ(outcome.message.find(kReaderPassword), std::string::npos);
  EXPECT_EQ(Shared().host.resolved(), resolved + 1);
  EXPECT_EQ(Shared().host.resolved(), Shared().host.released());
}

TEST(PostgresConnector, MissingTableIsNotFound) {
  Collector c;
  PullOutcome outcome = Pull(Config(DefaultDatasets()), PullDoc("ghost"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_NOT_FOUND) << outcome.message;
  EXPECT_NE(outcome.message.find("ghost"), std::string::npos);
  // Not a configured dataset, or an object the dataset does not name.
  outcome = Pull(Config(DefaultDatasets()), PullDoc("nope"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_NOT_FOUND) << outcome.message;
  outcome = Pull(Config(DefaultDatasets()),
                 {{"dataset", "people"}, {"object", "public.secret_stuff"}}, c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_NOT_FOUND) << outcome.message;
}

TEST(PostgresConnector, RoleWithoutSelectIsPermissionDenied) {
  Collector c;
  PullOutcome outcome =
      Pull(Config(DefaultDatasets(),
                  {{"user", "norights"}, {"password", std::string("env:") + kNoRightsPasswordEnv}}),
           PullDoc("people"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_PERMISSION_DENIED) << outcome.message;
  EXPECT_EQ(outcome.message.find(kNoRightsPassword), std::string::npos);
  EXPECT_TRUE(c.rows.empty());
  // The reader has no grant on secret_stuff either.
  outcome = Pull(Config(DefaultDatasets()), PullDoc("secret_stuff"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_PERMISSION_DENIED) << outcome.message;
}

TEST(PostgresConnector, UnreachableSourceIsUnavailable) {
  Collector c;
  PullOutcome outcome =
      Pull(Config(DefaultDatasets(), {{"port", 1}, {"connect_timeout_seconds", 2}}),
           PullDoc("people"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_UNAVAILABLE) << outcome.message;
}

TEST(PostgresConnector, UnmappedTypeIsNotRepresentableUnlessMasked) {
  Collector c;
  PullOutcome outcome = Pull(Config(DefaultDatasets()), PullDoc("pointy"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE) << outcome.message;
  EXPECT_NE(outcome.message.find("point"), std::string::npos);
  Collector masked = MustPull(PullDoc("pointy", {{"masks", {{"p", "redact"}}}}));
  const auto rows = SortedById(masked);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][1], "***");
  EXPECT_TRUE(rows[1][1].is_null());
  Collector without = MustPull(PullDoc("pointy", {{"columns", {"id"}}}));
  EXPECT_EQ(without.fields.size(), 1u);
}

TEST(PostgresConnector, ConfigurationRefusesPasswordValues) {
  Collector c;
  PullOutcome outcome =
      Pull(Config(DefaultDatasets(), {{"password", "hunter2-literal"}}), PullDoc("people"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(outcome.message.find("hunter2-literal"), std::string::npos) << outcome.message;
  outcome = Pull(Config(DefaultDatasets(), {{"ca_file", nullptr}}), PullDoc("people"), c);
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_INVALID_ARGUMENT) << outcome.message;
}

TEST(PostgresConnector, SecretsAreResolvedPerPullAndAlwaysReleased) {
  SecretHost& host = Shared().host;
  const int before = host.resolved();
  MustPull(PullDoc("people", {{"columns", {"id"}}}));
  EXPECT_EQ(host.resolved(), before + 1);
  EXPECT_EQ(host.released(), host.resolved());
  for (const auto& line : host.logs()) {
    EXPECT_EQ(line.find(kReaderPassword), std::string::npos) << line;
  }
}

// ---------------------------------------------------------------------------
// Cancellation, time bounds, streaming.

// Active statements of the connector under `application_name`.
int ActiveStatements(const std::string& application_name) {
  return std::stoi(
      *Shared().cluster->Query("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                               application_name + "' AND state = 'active'")[0][0]);
}

TEST(PostgresConnector, CancellationStopsTheServerQuery) {
  const std::string app = "airlock-cancel-test";
  std::atomic<bool> running{false};
  std::atomic<bool> stop_watch{false};
  // Cancels once the server is seen executing the sleeping statement.
  std::thread watcher([&] {
    const auto give_up = Clock::now() + std::chrono::seconds(20);
    while (!stop_watch && Clock::now() < give_up) {
      if (ActiveStatements(app) > 0) {
        running = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  Collector c;
  c.cancel_when = [&] { return running.load(); };
  const auto started = Clock::now();
  PullOutcome outcome =
      Pull(Config(DefaultDatasets(), {{"application_name", app}}), PullDoc("sleepy"), c);
  stop_watch = true;
  watcher.join();
  EXPECT_TRUE(running.load());
  EXPECT_EQ(outcome.status, AIRLOCK_ERR_CANCELLED) << outcome.message;
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(15));
  // The server side stops too (the backend ends with the connection).
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (ActiveStatements(app) > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ActiveStatements(app), 0);
}

TEST(PostgresConnector, PullAndStatementTimeoutsAreDeadlineExceeded) {
  for (const Json& overrides :
       {Json{{"pull_timeout_ms", 300}, {"application_name", "airlock-t1"}},
        Json{{"statement_timeout_ms", 300}, {"application_name", "airlock-t2"}}}) {
    Collector c;
    const auto started = Clock::now();
    PullOutcome outcome = Pull(Config(DefaultDatasets(), overrides), PullDoc("sleepy"), c);
    EXPECT_EQ(outcome.status, AIRLOCK_ERR_DEADLINE_EXCEEDED) << overrides.dump() << outcome.message;
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(10));
  }
}

TEST(PostgresConnector, StreamsALargerTableInBoundedBatches) {
  Collector c = MustPull(PullDoc("big"), {{"batch_rows", 4096}});
  ASSERT_EQ(c.rows.size(), 50000u);
  EXPECT_EQ(c.batch_rows.size(), 13u);
  for (size_t n : c.batch_rows) EXPECT_LE(n, 4096u);
  int64_t sum = 0;
  for (const auto& row : c.rows) sum += row[0].get<int64_t>();
  EXPECT_EQ(sum, int64_t{50000} * 50001 / 2);
  EXPECT_EQ(c.rows[41][1], "row-42");
  EXPECT_EQ(c.rows[41][2], 21.0);
}

}  // namespace
}  // namespace airlock::pgtest
