// Scope enforcement of the mongodb connector: column scope and row filters
// pushed down as BSON, injection attempts, masks in $project, pipeline
// datasets, streaming in bounded batches and cancellation. Through libmongoc
// against the wire-protocol test server (tests/support/mongodb), whose
// command log shows what actually crossed the wire.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "airlock/cpp/masking.hpp"
#include "tests/plugins/connectors/mongodb/mongo_fixture.h"

namespace airlock::mongo_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

Json Cond(const std::string& column, const std::string& op, Json value = Json()) {
  Json j = {{"column", column}, {"op", op}};
  if (!value.is_null()) j["value"] = std::move(value);
  return j;
}

class MongoScopeTest : public MongoFixture {
 protected:
  void SetUp() override {
    MongoFixture::SetUp();
    Seed("people", {R"({"_id": {"$oid": "65a000000000000000000001"}, "n": {"$numberLong": "1"},
              "name": "alice", "ssn": "123-45-6789", "salary": {"$numberLong": "123456"},
              "born": {"$date": {"$numberLong": "0"}}, "score": {"$numberDecimal": "1.50"}})",
                    R"({"_id": {"$oid": "65a000000000000000000002"}, "n": {"$numberLong": "2"},
              "name": "bob", "ssn": "987", "salary": {"$numberLong": "99"},
              "born": {"$date": {"$numberLong": "86400000"}}, "score": {"$numberDecimal": "10"}})",
                    R"({"_id": {"$oid": "65a000000000000000000003"}, "n": {"$numberLong": "3"},
              "name": null, "ssn": null, "born": null, "score": {"$numberDecimal": "2"}})",
                    R"({"_id": {"$oid": "65a000000000000000000004"}, "n": {"$numberLong": "4"},
              "name": "$where", "ssn": "5555-0000", "salary": {"$numberLong": "7"}})"});
  }

  std::vector<Json> Ids(std::vector<Json> conditions) {
    const Json filter(std::move(conditions));  // always a JSON array
    Collector sink;
    PullResult r = Pull(Config(), "people", {{"row_filter", filter}}, sink);
    EXPECT_EQ(r.status, AIRLOCK_OK) << r.message << " for " << filter.dump();
    return sink.column("n");
  }
};

TEST_F(MongoScopeTest, ColumnScopeIsAProjectionOnTheServer) {
  Collector sink;
  PullResult r = Pull(Config(), "people", {{"columns", {"name", "n"}}}, sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_THAT(sink.names(), ElementsAre("n", "name"));  // source order
  EXPECT_THAT(sink.column("name"), ElementsAre("alice", "bob", Json(), "$where"));
  // The server was asked for these fields only: _id excluded, ssn never sent.
  const std::string aggregate = server_->last_command("aggregate");
  EXPECT_THAT(aggregate, HasSubstr(R"("$project" : { "n" : 1, "name" : 1, "_id" : 0 })"));
  EXPECT_THAT(aggregate, Not(HasSubstr("ssn")));
}

TEST_F(MongoScopeTest, RowFiltersKeepSqlSemantics) {
  EXPECT_THAT(Ids({Cond("n", "eq", 2)}), ElementsAre(2));
  EXPECT_THAT(Ids({Cond("name", "ne", "alice")}), ElementsAre(2, 4));  // NULL excluded
  EXPECT_THAT(Ids({Cond("salary", "lt", 100)}), ElementsAre(2, 4));    // missing excluded
  EXPECT_THAT(Ids({Cond("salary", "ge", "99")}), ElementsAre(1, 2));   // text literal, typed
  EXPECT_THAT(Ids({Cond("n", "in", {1, 3, 99})}), ElementsAre(1, 3));
  EXPECT_THAT(Ids({Cond("name", "not_in", {"alice"})}), ElementsAre(2, 4));
  EXPECT_THAT(Ids({Cond("salary", "is_null")}), ElementsAre(3));  // missing is NULL
  EXPECT_THAT(Ids({Cond("ssn", "not_null")}), ElementsAre(1, 2, 4));
  EXPECT_THAT(Ids({Cond("born", "ge", "1970-01-02T00:00:00Z")}), ElementsAre(2));
  EXPECT_THAT(Ids({Cond("_id", "eq", "65a000000000000000000003")}), ElementsAre(3));
  EXPECT_THAT(Ids({Cond("score", "gt", "1.5")}), ElementsAre(2, 3));  // numeric, not text
  EXPECT_THAT(Ids({Cond("name", "like", "_o%")}), ElementsAre(2));
  EXPECT_THAT(Ids({Cond("n", "gt", 1), Cond("n", "lt", 4)}), ElementsAre(2, 3));  // AND
  // The filter went to the server as typed BSON.
  Ids({Cond("n", "eq", 2)});
  EXPECT_THAT(server_->last_command("aggregate"),
              HasSubstr(R"("$match" : { "$and" : [ { "n" : { "$eq" : 2 } } ] })"));
}

TEST_F(MongoScopeTest, InjectionAttemptsAreDataOrRefused) {
  // A string that looks like an operator is a value.
  EXPECT_THAT(Ids({Cond("name", "eq", "$where")}), ElementsAre(4));
  EXPECT_THAT(Ids({Cond("name", "eq", R"({"$gt": ""})")}), ElementsAre());
  EXPECT_THAT(Ids({Cond("name", "in", {"$ne", "{\"$exists\":true}"})}), ElementsAre());
  // Regular-expression syntax in a like pattern is literal.
  EXPECT_THAT(Ids({Cond("name", "like", ".*")}), ElementsAre());
  EXPECT_THAT(Ids({Cond("name", "like", "$%")}), ElementsAre(4));

  // A document as a value is refused before anything reaches the server.
  const size_t before = server_->commands().size();
  Collector sink;
  PullResult r =
      Pull(Config(), "people",
           {{"row_filter", Json::array({Cond("name", "eq", {{"$where", "sleep(1000)"}})})}}, sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_INVALID_ARGUMENT) << r.message;
  // A column named like an operator is not a column of the dataset.
  Collector sink2;
  r = Pull(Config(), "people", {{"row_filter", Json::array({Cond("$where", "eq", "1")})}}, sink2);
  EXPECT_EQ(r.status, AIRLOCK_ERR_INVALID_ARGUMENT) << r.message;
  Collector sink3;
  r = Pull(Config(), "people", {{"columns", {"$where"}}}, sink3);
  EXPECT_EQ(r.status, AIRLOCK_ERR_INVALID_ARGUMENT) << r.message;
  for (size_t i = before; i < server_->commands().size(); ++i) {
    EXPECT_THAT(server_->commands()[i], Not(HasSubstr("sleep")));
  }

  // A stored field whose name starts with '$' never becomes a column.
  Seed("odd", {R"({"ok": 1, "$evil": 2})"});
  Collector sink4;
  r = Pull(Config(), "odd", Json::object(), sink4);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_THAT(sink4.names(), ElementsAre("_id", "ok"));
  EXPECT_THAT(host_.logs(), ::testing::Contains(HasSubstr("'$evil'")));

  // Filters a column cannot honour on the server are refused, not ignored.
  Seed("nested", {R"({"doc": {"a": 1}})"});
  Collector sink5;
  r = Pull(Config(), "nested", {{"row_filter", Json::array({Cond("doc", "eq", "{}")})}}, sink5);
  EXPECT_EQ(r.status, AIRLOCK_ERR_INVALID_ARGUMENT) << r.message;
  Collector sink6;
  r = Pull(Config(), "people", {{"row_filter", Json::array({Cond("_id", "eq", "not-an-oid")})}},
           sink6);
  EXPECT_EQ(r.status, AIRLOCK_ERR_INVALID_ARGUMENT) << r.message;
}

TEST_F(MongoScopeTest, MasksArePushedDownAndMatchTheSdk) {
  Collector sink;
  const Json scope = {
      {"columns", {"n", "name", "ssn", "salary", "born"}},
      {"masks", {{"name", "hash"}, {"ssn", "last4"}, {"salary", "last4"}, {"born", "redact"}}}};
  PullResult r = Pull(Config(), "people", scope, sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  for (const char* masked : {"name", "ssn", "salary", "born"}) {
    EXPECT_EQ(sink.field(masked)->type, arrow::Type::kUtf8) << masked;
  }
  EXPECT_THAT(sink.column("ssn"), ElementsAre("****6789", "****", Json(), "****0000"));
  EXPECT_THAT(sink.column("salary"), ElementsAre("****3456", "****", Json(), "****"));
  EXPECT_THAT(sink.column("born"), ElementsAre("***", "***", Json(), Json()));
  EXPECT_THAT(sink.column("name"), ElementsAre(scope::MaskHash("alice"), scope::MaskHash("bob"),
                                               Json(), scope::MaskHash("$where")));
  // redact and last4 ran on the server: the raw ssn is projected away there.
  const std::string aggregate = server_->last_command("aggregate");
  EXPECT_THAT(aggregate, HasSubstr(R"("born" : { "$cond" : [ { "$eq" : [ { "$ifNull")"));
  EXPECT_THAT(aggregate, HasSubstr(R"("ssn" : { "$cond" : [ { "$eq" : [ { "$type" : "$ssn" })"));
  EXPECT_THAT(aggregate, HasSubstr(R"("$literal" : "***")"));
  EXPECT_THAT(aggregate, Not(HasSubstr(R"("ssn" : 1)")));
}

TEST_F(MongoScopeTest, FilterOnAMaskedColumnUsesTheRawValueOnTheServer) {
  Collector sink;
  PullResult r = Pull(Config(), "people",
                      {{"columns", {"n", "ssn"}},
                       {"masks", {{"ssn", "redact"}}},
                       {"row_filter", Json::array({Cond("ssn", "eq", "987")})}},
                      sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_THAT(sink.column("n"), ElementsAre(2));
  EXPECT_THAT(sink.column("ssn"), ElementsAre("***"));
}

TEST_F(MongoScopeTest, PipelineDatasetsComposeWithTheScope) {
  Seed("orders", {R"({"status": "open", "total": {"$numberLong": "10"}, "customer": "a"})",
                  R"({"status": "open", "total": {"$numberLong": "25"}, "customer": "b"})",
                  R"({"status": "closed", "total": {"$numberLong": "99"}, "customer": "c"})"});
  const Json config =
      Config({{"datasets",
               {{{"name", "open_orders"},
                 {"collection", "orders"},
                 {"pipeline",
                  {{{"$match", {{"status", "open"}}}},
                   {{"$addFields", {{"doubled", {{"$add", {"$total", "$total"}}}}}}}}}}}}});
  Collector sink;
  PullResult r = Pull(config, "open_orders",
                      {{"columns", {"customer", "doubled"}},
                       {"row_filter", Json::array({Cond("doubled", "gt", 30)})}},
                      sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_THAT(sink.names(), ElementsAre("customer", "doubled"));
  EXPECT_EQ(sink.field("doubled")->type, arrow::Type::kInt64);
  EXPECT_THAT(sink.column("customer"), ElementsAre("b"));
  EXPECT_THAT(sink.column("doubled"), ElementsAre(50));

  // Stages that write are refused at configuration time.
  const Json writes =
      Config({{"datasets",
               {{{"name", "x"}, {"collection", "orders"}, {"pipeline", {{{"$out", "stolen"}}}}}}}});
  Collector sink2;
  r = Pull(writes, "x", Json::object(), sink2);
  EXPECT_EQ(r.create_status, AIRLOCK_ERR_INVALID_ARGUMENT) << r.message;
  // A dataset that is not configured is not served.
  Collector sink3;
  r = Pull(config, "orders", Json::object(), sink3);
  EXPECT_EQ(r.status, AIRLOCK_ERR_NOT_FOUND) << r.message;
}

TEST_F(MongoScopeTest, LargeCollectionStreamsInBoundedBatches) {
  constexpr int kRows = 25000;
  std::vector<std::string> docs;
  docs.reserve(kRows);
  for (int i = 1; i <= kRows; ++i) {
    docs.push_back(R"({"id": {"$numberLong": ")" + std::to_string(i) + R"("}, "label": "row )" +
                   std::to_string(i) + R"("})");
  }
  Seed("big", docs);
  Collector sink;
  PullResult r = Pull(Config({{"batch_rows", 1000}}), "big", {{"columns", {"id", "label"}}}, sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  ASSERT_EQ(sink.rows.size(), static_cast<size_t>(kRows));
  for (size_t n : sink.batch_rows) EXPECT_LE(n, 1000u);
  EXPECT_EQ(sink.batch_rows.size(), 25u);
  int64_t expected = 1;
  for (const auto& row : sink.rows) EXPECT_EQ(row[0], expected++);
  // The cursor was read in server batches of batch_rows (getMore), and is gone.
  size_t get_mores = 0;
  for (const auto& c : server_->commands()) get_mores += c.rfind("{ \"getMore\"", 0) == 0;
  EXPECT_GE(get_mores, 24u);
  EXPECT_EQ(server_->open_cursors(), 0u);
}

TEST_F(MongoScopeTest, CancellationKillsTheServerCursor) {
  std::vector<std::string> docs;
  for (int i = 0; i < 5000; ++i) docs.push_back(R"({"v": )" + std::to_string(i) + "}");
  Seed("many", docs);
  Collector sink;
  sink.cancel_after = 2;
  PullResult r = Pull(Config({{"batch_rows", 500}}), "many", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_CANCELLED) << r.message;
  EXPECT_EQ(sink.batch_rows.size(), 2u);
  EXPECT_EQ(server_->cursors_killed(), 1u);
  EXPECT_EQ(server_->open_cursors(), 0u);
}

// The connector reads the cursor one server batch ahead of the conversion
// (cursor_prefetch.h): while the consumer still holds the first batch, the
// server has already been asked for the next one.
TEST_F(MongoScopeTest, NextServerBatchIsRequestedWhileOneIsConverted) {
  std::vector<std::string> docs;
  for (int i = 0; i < 1000; ++i) docs.push_back(R"({"v": )" + std::to_string(i) + "}");
  Seed("ahead", docs);
  class Holding : public Collector {
   public:
    explicit Holding(airlock::testing::mongodb::MongoTestServer& server) : server_(server) {}
    Status OnBatch(arrow::OwnedArray batch) override {
      if (batch_rows.empty()) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (GetMores() == 0 && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polls the server's log
        }
        get_mores_while_held = GetMores();
      }
      return Collector::OnBatch(std::move(batch));
    }
    size_t GetMores() const {
      size_t n = 0;
      for (const auto& c : server_.commands()) n += c.rfind("{ \"getMore\"", 0) == 0;
      return n;
    }
    size_t get_mores_while_held = 0;

   private:
    airlock::testing::mongodb::MongoTestServer& server_;
  } sink(*server_);
  PullResult r = Pull(Config({{"batch_rows", 100}}), "ahead", Json::object(), sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_GE(sink.get_mores_while_held, 1u);
  ASSERT_EQ(sink.rows.size(), 1000u);
  int64_t expected = 0;
  for (const Json& v : sink.column("v")) EXPECT_EQ(v, expected++);
  EXPECT_EQ(server_->open_cursors(), 0u);
}

TEST_F(MongoScopeTest, DescribeListsCollectionsWithInferredColumns) {
  auto catalog = Describe(Config());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  ASSERT_EQ(catalog->datasets.size(), 1u);
  const DatasetInfo& people = catalog->datasets[0];
  EXPECT_EQ(people.name, "people");
  std::vector<std::string> columns;
  for (const auto& c : people.columns) columns.push_back(c.name + ":" + c.type);
  EXPECT_THAT(columns, ElementsAre("_id:utf8", "n:int64", "name:utf8", "ssn:utf8", "salary:int64",
                                   "born:timestamp", "score:utf8"));
}

// The catalog's rows per dataset name (-1: unknown, left out of the JSON).
std::map<std::string, int64_t> RowsByName(const Catalog& catalog) {
  std::map<std::string, int64_t> rows;
  for (const auto& d : catalog.datasets) rows[d.name] = d.rows;
  return rows;
}

TEST_F(MongoScopeTest, DescribeCountsDocumentsOfPlainCollections) {
  Seed("pets", {R"({"k": 1})", R"({"k": 2})", R"({"k": 3})"});
  auto discovered = Describe(Config());
  ASSERT_TRUE(discovered.ok()) << discovered.status().ToString();
  EXPECT_EQ(RowsByName(*discovered), (std::map<std::string, int64_t>{{"people", 4}, {"pets", 3}}));
  // Asked of the server as estimatedDocumentCount does: a count without a
  // query, bounded in time.
  const std::string count = server_->last_command("count");
  EXPECT_THAT(count, HasSubstr(R"("count" : "pets")"));
  EXPECT_THAT(count, HasSubstr(R"("maxTimeMS" : 5000)"));
  EXPECT_THAT(count, Not(HasSubstr("query")));

  // Counted even when every column is declared; a pipeline's output would
  // have to be run to be counted, and a missing collection is not empty.
  const Json declared = Json::array({{{"name", "n"}, {"type", "int64"}}});
  auto configured = Describe(
      Config({{"datasets",
               {{{"name", "people"}},
                {{"name", "declared"}, {"collection", "pets"}, {"columns", declared}},
                {{"name", "rich"},
                 {"collection", "people"},
                 {"pipeline", Json::parse(R"([{"$match": {"salary": {"$gt": 100}}}])")}},
                {{"name", "ghost"}, {"collection", "nothing_here"}, {"columns", declared}}}}}));
  ASSERT_TRUE(configured.ok()) << configured.status().ToString();
  EXPECT_EQ(RowsByName(*configured),
            (std::map<std::string, int64_t>{
                {"people", 4}, {"declared", 3}, {"rich", -1}, {"ghost", -1}}));
  // The count follows the collection, not a sample of it.
  Seed("pets", {R"({"k": 4})"});
  auto grown = Describe(Config());
  ASSERT_TRUE(grown.ok()) << grown.status().ToString();
  EXPECT_EQ(RowsByName(*grown)["pets"], 4);
}

}  // namespace
}  // namespace airlock::mongo_test
