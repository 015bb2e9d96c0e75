// The enclave runtime end to end: ServeEnclave on one end of a socketpair,
// EnclaveClient on the other, the "gen" connector loaded as a real plugin.
#include "kernel/enclave/enclave_runtime.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/kernel/enclave/enclave_test_support.h"
#include "tests/kernel/enclave/gen_rows.h"

namespace airlock::enclave {
namespace {

using namespace test_support;  // NOLINT
using ::testing::HasSubstr;

// Starts an enclave with `spec` and waits for sealed/failed.
struct Started {
  std::unique_ptr<InProcessEnclave> enclave;
  EventLog log;
  Json outcome;

  explicit Started(const Json& spec, EnclaveEnvironment env = {}) {
    enclave = std::make_unique<InProcessEnclave>(std::move(env));
    enclave->StartClient(log.Events());
    EXPECT_TRUE(enclave->client->SendSpec(spec).ok());
    outcome = log.WaitForOutcome();
  }
  EnclaveClient& client() { return *enclave->client; }

  Status Run(const std::string& sql, CollectingConsumer& consumer,
             std::chrono::milliseconds timeout = 20s) {
    return client().Query(sql, consumer, timeout);
  }
};

TEST(EnclaveRuntime, IngestsTwoDatasetsInParallelAndJoinsThem) {
  Started e(MakeSpec(
      {GenDataset("orders",
                  {{"rows", 5000}, {"shape", "narrow"}, {"delay_ms", 5}, {"batch_rows", 500}}),
       GenDataset("customers", {{"rows", 3000},
                                {"shape", "narrow"},
                                {"offset", 2000},
                                {"delay_ms", 5},
                                {"batch_rows", 500}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed") << e.outcome.dump();
  EXPECT_TRUE(e.outcome.value("credentials_cleared", false));
  ASSERT_EQ(e.outcome["tables"].size(), 2u);
  EXPECT_EQ(e.outcome["tables"][0]["name"], "orders");
  EXPECT_EQ(e.outcome["tables"][0]["rows"], 5000);
  EXPECT_EQ(e.outcome["tables"][1]["name"], "customers");
  EXPECT_EQ(e.outcome["tables"][1]["rows"], 3000);

  // Both pulls ran at once: each reported progress before the other finished.
  const auto progress = e.log.progress();
  auto first_of = [&](const std::string& ds, const std::string& state) {
    for (size_t i = 0; i < progress.size(); ++i) {
      if (progress[i]["dataset"] == ds && progress[i]["state"] == state) return i;
    }
    return progress.size();
  };
  EXPECT_LT(first_of("orders", "pulling"), first_of("customers", "done"));
  EXPECT_LT(first_of("customers", "pulling"), first_of("orders", "done"));
  ASSERT_LT(first_of("orders", "done"), progress.size());
  EXPECT_EQ(progress[first_of("orders", "done")]["rows"], 5000);
  EXPECT_GT(progress[first_of("orders", "done")]["bytes"].get<uint64_t>(), 0u);

  // Ids 2000..4999 exist in both.
  CollectingConsumer joined;
  ASSERT_TRUE(
      e.Run("SELECT count(*), sum(o.value) FROM orders o JOIN customers c ON o.id = c.id", joined)
          .ok());
  int64_t count = -1;
  double sum = -1;
  joined.ForEachRow([&](const arrow::BatchView& v, size_t r) {
    count = v.GetInt64(0, r);
    sum = v.GetDouble(1, r);
  });
  EXPECT_EQ(count, 3000);
  double expected = 0;
  for (int64_t id = 2000; id < 5000; ++id) expected += static_cast<double>(id) * 1.25;
  EXPECT_DOUBLE_EQ(sum, expected);

  auto tables = e.client().Tables(5s);
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  EXPECT_EQ((*tables)["tables"].size(), 2u);
  EXPECT_EQ((*tables)["tables"][0]["columns"][0]["name"], "id");
  EXPECT_EQ((*tables)["tables"][0]["columns"][0]["type"], "int64");
}

// Collects the enclave's warnings, from whichever thread logs them.
class WarningLog {
 public:
  EnclaveEnvironment Environment() {
    EnclaveEnvironment env;
    env.log = [this](int32_t level, std::string_view, std::string_view message) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (level == AIRLOCK_LOG_WARN) warnings_.emplace_back(message);
    };
    return env;
  }
  // Every warning so far, one per line.
  std::string All() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string all;
    for (const auto& w : warnings_) all += w + "\n";
    return all;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> warnings_;
};

// How many orders meet a customer on `id`: the join the keys serve.
int64_t JoinedCount(Started& e) {
  CollectingConsumer joined;
  EXPECT_TRUE(e.Run("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.id", joined).ok());
  int64_t count = -1;
  joined.ForEachRow([&](const arrow::BatchView& v, size_t r) { count = v.GetInt64(0, r); });
  return count;
}

TEST(EnclaveRuntime, StoresReportedKeysInOrderAndWarnsOfBadOnes) {
  WarningLog warnings;
  Started e(
      MakeSpec(
          {GenDataset("orders", {{"rows", 3000}, {"shape", "narrow"}}),
           GenDataset("customers", {{"rows", 2000}, {"shape", "narrow"}, {"key", R"(["id"])"}}),
           GenDataset("odd", {{"rows", 10}, {"shape", "narrow"}, {"key", R"(["nope"])"}})}),
      warnings.Environment());
  ASSERT_EQ(e.outcome.value("state", ""), "sealed") << e.outcome.dump();
  const std::string all = warnings.All();
  EXPECT_THAT(all, HasSubstr("dataset odd: key not used: 'nope' is not one of its columns"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("dataset customers")));
  // The key's order serves the join; the answer is what it was without it.
  EXPECT_EQ(JoinedCount(e), 2000);
}

TEST(EnclaveRuntime, StoresDeclaredKeysInOrderInPlaceOfReportedOnes) {
  WarningLog warnings;
  // "customers" reports no key and "orders" a bad one; the spec declares a
  // good key for both. "odd" reports a good key but is declared with a
  // column it lacks: the declaration wins, and is reported as not used.
  Json customers = GenDataset("customers", {{"rows", 2000}, {"shape", "narrow"}});
  customers["key"] = {"id"};
  Json orders = GenDataset("orders", {{"rows", 3000}, {"shape", "narrow"}, {"key", R"(["x"])"}});
  orders["key"] = {"id"};
  Json odd = GenDataset("odd", {{"rows", 10}, {"shape", "narrow"}, {"key", R"(["id"])"}});
  odd["key"] = {"nope"};
  Started e(MakeSpec({orders, customers, odd}), warnings.Environment());
  ASSERT_EQ(e.outcome.value("state", ""), "sealed") << e.outcome.dump();
  const std::string all = warnings.All();
  EXPECT_THAT(all, HasSubstr("dataset odd: key not used: 'nope' is not one of its columns"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("dataset customers")));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("dataset orders")));
  EXPECT_EQ(JoinedCount(e), 2000);
}

TEST(EnclaveRuntime, EveryTypeRoundTripsThroughSqlite) {
  constexpr int64_t kRows = 2000;
  Started e(MakeSpec({GenDataset("t", {{"rows", kRows}, {"batch_rows", 333}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed") << e.outcome.dump();

  CollectingConsumer out;
  ASSERT_TRUE(e.Run("SELECT * FROM t ORDER BY id", out).ok());
  ASSERT_EQ(out.rows, static_cast<uint64_t>(kRows));
  // Declared column types map back to the Arrow types they came from.
  const auto expected_fields = gen::AllFields();
  ASSERT_EQ(out.fields.size(), expected_fields.size());
  for (size_t c = 0; c < expected_fields.size(); ++c) {
    EXPECT_EQ(out.fields[c].name, expected_fields[c].name);
    EXPECT_EQ(out.fields[c].type, expected_fields[c].type) << expected_fields[c].name;
  }
  EXPECT_EQ(out.fields[5].timezone, "UTC");

  int64_t row = 0;
  out.ForEachRow([&](const arrow::BatchView& v, size_t r) {
    SCOPED_TRACE("row " + std::to_string(row));
    EXPECT_EQ(v.GetInt64(0, r), row);
    const auto score = gen::Score(row);
    ASSERT_EQ(v.IsNull(1, r), !score.has_value());
    if (score) {
      EXPECT_EQ(v.GetDouble(1, r), *score);
    }
    const auto name = gen::Name(row);
    ASSERT_EQ(v.IsNull(2, r), !name.has_value());
    if (name) {
      EXPECT_EQ(v.GetString(2, r), *name);
    }
    EXPECT_EQ(v.GetBool(3, r), gen::Flag(row));
    const auto day = gen::Day(row);
    ASSERT_EQ(v.IsNull(4, r), !day.has_value());
    if (day) {
      EXPECT_EQ(v.GetDate32(4, r), *day);
    }
    EXPECT_EQ(v.GetTimestamp(5, r), gen::Ts(row));
    EXPECT_EQ(v.GetTime(6, r), gen::Time(row));
    EXPECT_EQ(v.GetInt32(7, r), gen::Small(row));
    EXPECT_FALSE(v.IsNull(8, r));
    EXPECT_EQ(v.GetString(8, r), gen::Payload(row));
    EXPECT_TRUE(v.IsNull(9, r));
    ++row;
  });
  EXPECT_EQ(row, kRows);

  // In SQLite, dates and timestamps are ISO text and booleans are 0/1.
  CollectingConsumer text;
  ASSERT_TRUE(e.Run("SELECT day, ts, t, typeof(flag), flag FROM t WHERE id = 1", text).ok());
  text.ForEachRow([&](const arrow::BatchView& v, size_t r) {
    EXPECT_EQ(v.GetDate32(0, r), gen::Day(1).value());
    EXPECT_EQ(v.GetTimestamp(1, r), gen::Ts(1));
    EXPECT_EQ(v.GetTime(2, r), gen::Time(1));
    EXPECT_EQ(v.GetString(3, r), "integer");
    EXPECT_FALSE(v.GetBool(4, r));
  });
  CollectingConsumer iso;
  ASSERT_TRUE(e.Run("SELECT CAST(day AS TEXT) || '', ts || '' FROM t WHERE id = 1", iso).ok());
  iso.ForEachRow([&](const arrow::BatchView& v, size_t r) {
    EXPECT_EQ(v.GetString(0, r), arrow::FormatDate32(gen::Day(1).value()));
    EXPECT_EQ(v.GetString(1, r), arrow::FormatTimestamp(gen::Ts(1), true));
  });
}

TEST(EnclaveRuntime, ExpressionColumnsTakeTheirTypeFromTheValues) {
  Started e(MakeSpec({GenDataset("t", {{"rows", 10}, {"shape", "narrow"}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  CollectingConsumer out;
  ASSERT_TRUE(e.Run("SELECT id * 2 AS twice, value / 2 AS half, 'x' || id AS label, NULL AS none, "
                    "x'00ff' AS bytes, CASE WHEN id < 5 THEN id ELSE id + 0.5 END AS mixed "
                    "FROM t ORDER BY id",
                    out)
                  .ok());
  ASSERT_EQ(out.fields.size(), 6u);
  EXPECT_EQ(out.fields[0].type, arrow::Type::kInt64);
  EXPECT_EQ(out.fields[1].type, arrow::Type::kFloat64);
  EXPECT_EQ(out.fields[2].type, arrow::Type::kUtf8);
  EXPECT_EQ(out.fields[3].type, arrow::Type::kUtf8);
  EXPECT_EQ(out.fields[4].type, arrow::Type::kBinary);
  EXPECT_EQ(out.fields[5].type, arrow::Type::kFloat64);  // ints and reals mix as float64
  out.ForEachRow([&](const arrow::BatchView& v, size_t r) {
    EXPECT_EQ(v.GetInt64(0, r), static_cast<int64_t>(r) * 2);
    EXPECT_TRUE(v.IsNull(3, r));
    EXPECT_EQ(v.GetString(4, r), std::string("\0\xff", 2));
    EXPECT_DOUBLE_EQ(v.GetDouble(5, r), r < 5 ? r : r + 0.5);
  });
}

TEST(EnclaveRuntime, OneFailingDatasetFailsTheWholeEnclave) {
  Started e(MakeSpec(
      {GenDataset("good",
                  {{"rows", 200000}, {"shape", "narrow"}, {"batch_rows", 1000}, {"delay_ms", 2}}),
       GenDataset("bad", {{"rows", 5000}, {"fail_after_rows", 2500}, {"batch_rows", 1000}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "failed") << e.outcome.dump();
  EXPECT_THAT(e.outcome.value("reason", ""), HasSubstr("dataset bad: "));
  EXPECT_THAT(e.outcome.value("reason", ""), HasSubstr("the source went away"));
  EXPECT_EQ(e.outcome.value("code", ""), "unavailable");
  // The other pull was stopped rather than run to the end.
  bool good_stopped = false;
  for (const Json& p : e.log.progress()) {
    if (p["dataset"] == "good" && p["state"] == "cancelled") good_stopped = true;
    EXPECT_FALSE(p["dataset"] == "good" && p["state"] == "done");
  }
  EXPECT_TRUE(good_stopped);

  CollectingConsumer out;
  Status query = e.Run("SELECT count(*) FROM good", out);
  EXPECT_EQ(query.code(), StatusCode::kFailedPrecondition) << query.ToString();
  EXPECT_THAT(query.message(), HasSubstr("failed"));
  EXPECT_EQ(out.rows, 0u);
  auto tables = e.client().Tables(5s);
  EXPECT_EQ(tables.status().code(), StatusCode::kFailedPrecondition);
}

TEST(EnclaveRuntime, BadSpecFailsWithoutPulling) {
  Started e(MakeSpec({GenDataset("ok", {{"rows", 10}}), GenDataset("bad name; DROP", {})}));
  ASSERT_EQ(e.outcome.value("state", ""), "failed");
  EXPECT_EQ(e.outcome.value("code", ""), "invalid_argument");
  EXPECT_THAT(e.outcome.value("reason", ""), HasSubstr("not a safe table name"));
  EXPECT_TRUE(e.log.progress().empty());
}

TEST(EnclaveRuntime, ConnectorLoadFailureNamesTheDataset) {
  Json ds = GenDataset("pinned", {{"rows", 10}});
  ds["connector"]["sha256"] = std::string(64, '0');
  Started e(MakeSpec({ds}));
  ASSERT_EQ(e.outcome.value("state", ""), "failed");
  EXPECT_THAT(e.outcome.value("reason", ""), HasSubstr("dataset pinned: loading its connector"));
}

TEST(EnclaveRuntime, RefusesEveryWriteAfterSealing) {
  Started e(MakeSpec({GenDataset("t", {{"rows", 100}, {"shape", "narrow"}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  const std::vector<std::string> refused = {
      "INSERT INTO t VALUES (1, 2.0, 'x')",
      "UPDATE t SET value = 0",
      "DELETE FROM t",
      "CREATE TABLE x (a INT)",
      "CREATE TEMP TABLE x (a INT)",
      "CREATE VIEW v AS SELECT 1",
      "CREATE INDEX i ON t(id)",
      "DROP TABLE t",
      "ALTER TABLE t RENAME TO u",
      "ATTACH DATABASE ':memory:' AS other",
      "ATTACH DATABASE 'file:/tmp/airlock-enclave-test.db' AS other",
      "DETACH DATABASE lane1",
      "PRAGMA writable_schema = 1",
      "PRAGMA table_info(t)",
      "BEGIN",
      "SAVEPOINT s",
      "ANALYZE",
      "VACUUM",
      "REINDEX",
      "SELECT load_extension('/tmp/evil.so')",
      "SELECT * FROM pragma_table_info('t')",
  };
  for (const std::string& sql : refused) {
    CollectingConsumer out;
    Status status = e.Run(sql, out);
    EXPECT_EQ(status.code(), StatusCode::kPermissionDenied) << sql << " -> " << status.ToString();
  }
  CollectingConsumer two;
  EXPECT_EQ(e.Run("SELECT 1; DELETE FROM t", two).code(), StatusCode::kInvalidArgument);
  CollectingConsumer syntax;
  EXPECT_EQ(e.Run("SELEKT 1", syntax).code(), StatusCode::kInvalidArgument);

  CollectingConsumer count;
  ASSERT_TRUE(e.Run("SELECT count(*) FROM t", count).ok());
  EXPECT_EQ(count.ScalarInt(), 100);
}

TEST(EnclaveRuntime, QueriesLongerThanTheLimitAreStopped) {
  EnclaveEnvironment one_worker;
  one_worker.query_workers = 1;  // "free again" below then means this very worker
  Started e(
      MakeSpec({GenDataset("t", {{"rows", 10}, {"shape", "narrow"}})}, {{"query_timeout_ms", 300}}),
      one_worker);
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  CollectingConsumer out;
  const auto start = std::chrono::steady_clock::now();
  Status status = e.Run(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
      "SELECT count(*) FROM c",
      out);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status.ToString();
  EXPECT_LT(took, 3s);
  EXPECT_GE(took, 250ms);
  // The worker is free again.
  CollectingConsumer next;
  EXPECT_TRUE(e.Run("SELECT count(*) FROM t", next).ok());
}

TEST(EnclaveRuntime, CancellingARunningQueryReturnsWithinASecond) {
  EnclaveEnvironment one_worker;
  one_worker.query_workers = 1;  // the next query can only run once the enclave stopped this one
  Started e(MakeSpec({GenDataset("t", {{"rows", 10}, {"shape", "narrow"}})}), one_worker);
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  CollectingConsumer out;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);  // lets the query get going
    out.cancel.store(true);
  });
  const auto start = std::chrono::steady_clock::now();
  Status status = e.Run(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
      "SELECT count(*) FROM c",
      out);
  const auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(status.code(), StatusCode::kCancelled) << status.ToString();
  EXPECT_LT(took, 1300ms);

  // The enclave stopped it too: the next query is served promptly by a free worker.
  for (int i = 0; i < 8; ++i) {
    CollectingConsumer next;
    const auto again = std::chrono::steady_clock::now();
    ASSERT_TRUE(e.Run("SELECT count(*) FROM t", next, 2s).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - again, 1s);
  }
}

TEST(EnclaveRuntime, StreamsALargeResultInSeveralBatches) {
  constexpr int64_t kRows = 50000;
  Started e(MakeSpec({GenDataset("t", {{"rows", kRows}, {"shape", "narrow"}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  CollectingConsumer out;
  ASSERT_TRUE(e.Run("SELECT id, name FROM t ORDER BY id", out).ok());
  EXPECT_EQ(out.rows, static_cast<uint64_t>(kRows));
  EXPECT_GE(out.batches.size(), static_cast<size_t>(kRows / 4096));
  EXPECT_LE(out.max_batch_rows, 4096u);
  int64_t expected = 0;
  out.ForEachRow([&](const arrow::BatchView& v, size_t r) {
    ASSERT_EQ(v.GetInt64(0, r), expected);
    ASSERT_EQ(v.GetString(1, r), "n" + std::to_string(expected));
    ++expected;
  });
}

TEST(EnclaveRuntime, ResultsBeyondMaxRowsAreRefused) {
  Started e(MakeSpec({GenDataset("t", {{"rows", 10000}, {"shape", "narrow"}})},
                     {{"max_result_rows", 5000}}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  CollectingConsumer out;
  Status status = e.Run("SELECT id FROM t", out);
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status.ToString();
  EXPECT_LE(out.rows, 5000u);
  CollectingConsumer fits;
  EXPECT_TRUE(e.Run("SELECT id FROM t LIMIT 5000", fits).ok());
  EXPECT_EQ(fits.rows, 5000u);
}

TEST(EnclaveRuntime, IngestionBeyondTheMemoryLimitFails) {
  Started e(MakeSpec({GenDataset("big", {{"rows", 200000}, {"shape", "narrow"}})},
                     {{"max_memory_bytes", 1 << 20}}));
  ASSERT_EQ(e.outcome.value("state", ""), "failed") << e.outcome.dump();
  EXPECT_EQ(e.outcome.value("code", ""), "resource_exhausted");
  EXPECT_THAT(e.outcome.value("reason", ""), HasSubstr("dataset big"));
}

// The sealed state carries the enclave's memory, and a "memory" state
// follows at every interval while it lives. Sharing its process (as here),
// it reports its data only: the process's memory is not its own.
TEST(EnclaveRuntime, ReportsItsMemoryWhenSealedAndWhileItLives) {
  EnclaveEnvironment env;
  env.memory_report_interval = 50ms;
  Started e(MakeSpec({GenDataset("t", {{"rows", 20000}, {"shape", "narrow"}})}), env);
  ASSERT_EQ(e.outcome.value("state", ""), "sealed") << e.outcome.dump();
  ASSERT_TRUE(e.outcome.contains("memory")) << e.outcome.dump();
  const int64_t data = e.outcome["memory"].value("data_bytes", int64_t{0});
  // 20,000 rows of an integer id and more: well over 8 bytes a row, and
  // under the enclave's bound.
  EXPECT_GT(data, 20000 * 8);
  EXPECT_LT(data, int64_t{64} << 20);
  EXPECT_FALSE(e.outcome["memory"].contains("resident_bytes"));
  const Json later = e.log.WaitForState("memory", 5s);
  ASSERT_FALSE(later.is_null()) << "no memory report after sealing";
  EXPECT_EQ(later["memory"].value("data_bytes", int64_t{0}), data);
}

// Mode describe: each dataset's connector describes it, nothing is pulled,
// and a dataset its connector does not know is named with the reason.
TEST(EnclaveRuntime, DescribeModeReportsWhatTheConnectorsSayAndPullsNothing) {
  char dir_template[] = "/tmp/airlock-describe-XXXXXX";
  const std::string dir = ::mkdtemp(dir_template);
  {
    std::ofstream(dir + "/orders.csv")
        << "order_id,amount,placed\n1,10.5,2026-01-02\n2,3,2026-01-03\n";
  }
  const Json files = {
      {"name", "files"}, {"path", FILES_CONNECTOR_PATH}, {"config", {{"root", dir}}}};
  Json spec = MakeSpec({{{"name", "orders"},
                         {"connector", files},
                         {"pull", {{"dataset", "orders"}, {"object", "orders.csv"}}}},
                        {{"name", "ghost"},
                         {"connector", files},
                         {"pull", {{"dataset", "ghost"}, {"object", "ghost.csv"}}}},
                        GenDataset("generated", {{"rows", 10}})});
  spec["mode"] = "describe";
  EventLog log;
  InProcessEnclave enclave;
  enclave.StartClient(log.Events());
  ASSERT_TRUE(enclave.client->SendSpec(spec).ok());
  const Json described = log.WaitForState("described");
  ASSERT_FALSE(described.is_null()) << "no described state";
  EXPECT_EQ(described["datasets"]["orders"]["columns"],
            Json::parse(R"([{"name":"order_id","type":"int64"},{"name":"amount","type":"float64"},)"
                        R"({"name":"placed","type":"utf8"}])"))
      << described.dump();
  EXPECT_FALSE(described["datasets"].contains("ghost"));
  EXPECT_NE(described["errors"].value("ghost", "").find("ghost.csv"), std::string::npos)
      << described.dump();
  EXPECT_NE(described["errors"].value("generated", "").find("does not describe"), std::string::npos)
      << described.dump();
  EXPECT_TRUE(log.progress().empty()) << "a describe pulls nothing";
  // It serves no queries.
  CollectingConsumer out;
  EXPECT_FALSE(enclave.client->Query("SELECT 1", out, 5s).ok());
  std::filesystem::remove_all(dir);
}

TEST(EnclaveRuntime, ServesConcurrentQueries) {
  Started e(MakeSpec({GenDataset("t", {{"rows", 20000}, {"shape", "narrow"}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      CollectingConsumer out;
      const std::string sql = "SELECT id FROM t WHERE id % 6 = " + std::to_string(i);
      if (e.Run(sql, out).ok() && out.rows == 20000 / 6 + (i < 20000 % 6 ? 1 : 0)) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
}

// Takes its time over every batch, like a tunnel client on a slow link.
class SlowConsumer : public CollectingConsumer {
 public:
  Status OnBatch(arrow::OwnedArray batch) override {
    started.store(true);
    std::this_thread::sleep_for(50ms);
    return CollectingConsumer::OnBatch(std::move(batch));
  }
  std::atomic<bool> started{false};
};

TEST(EnclaveRuntime, ASlowConsumerDoesNotHoldUpOtherQueries) {
  Started e(MakeSpec({GenDataset("t", {{"rows", 60000}, {"shape", "narrow"}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  // About 120 MB of result, far more than the flow-control window.
  SlowConsumer slow;
  auto big = std::async(std::launch::async, [&] {
    return e.Run("SELECT id, printf('%.2000c', 'x') AS filler FROM t", slow, 60s);
  });
  while (!slow.started.load()) std::this_thread::sleep_for(10ms);
  for (int i = 0; i < 5; ++i) {
    CollectingConsumer quick;
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(e.Run("SELECT count(*) FROM t", quick, 5s).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_EQ(quick.ScalarInt(), 60000);
  }
  Status status = big.get();
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(slow.rows, 60000u);
}

TEST(EnclaveRuntime, ConnectorAuditEventsReachTheKernel) {
  Started e(MakeSpec({GenDataset("t", {{"rows", 10}, {"audit", true}})}));
  ASSERT_EQ(e.outcome.value("state", ""), "sealed");
  const auto audits = e.log.audits();
  ASSERT_EQ(audits.size(), 1u);
  EXPECT_EQ(audits[0]["event"], "gen.pull");
  EXPECT_EQ(audits[0]["dataset"], "t");
}

TEST(EnclaveRuntime, EnclavesSharingAProcessKeepTheirConnectorsApart) {
  // Both load the same connector file, which the process maps once.
  ::setenv("AIRLOCK_TEST_SHARED_SECRET", gen::kExpectedSecret, 1);
  auto dataset = [](const std::string& name) {
    return GenDataset(name, {{"rows", 3000},
                             {"batch_rows", 100},
                             {"delay_ms", 10},
                             {"audit", true},
                             {"secret", "env:AIRLOCK_TEST_SHARED_SECRET"}});
  };
  InProcessEnclave first, second;
  EventLog first_log, second_log;
  first.StartClient(first_log.Events());
  second.StartClient(second_log.Events());
  ASSERT_TRUE(first.client->SendSpec(MakeSpec({dataset("first_data")})).ok());
  ASSERT_TRUE(second.client->SendSpec(MakeSpec({dataset("second_data")})).ok());
  EXPECT_EQ(first_log.WaitForOutcome().value("state", ""), "sealed");
  EXPECT_EQ(second_log.WaitForOutcome().value("state", ""), "sealed");
  ::unsetenv("AIRLOCK_TEST_SHARED_SECRET");
  // Each connector's audit event reached its own enclave's kernel channel.
  ASSERT_EQ(first_log.audits().size(), 1u);
  EXPECT_EQ(first_log.audits()[0]["dataset"], "first_data");
  ASSERT_EQ(second_log.audits().size(), 1u);
  EXPECT_EQ(second_log.audits()[0]["dataset"], "second_data");
}

TEST(EnclaveRuntime, JobModeRunsItsQueriesAndReportsThem) {
  InProcessEnclave enclave;
  EventLog log;
  std::mutex mutex;
  std::map<size_t, std::unique_ptr<CollectingConsumer>> results;
  std::map<size_t, std::pair<Status, uint64_t>> ends;
  EnclaveEvents events = log.Events();
  events.on_job_result = [&](size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = results[index];
    slot = std::make_unique<CollectingConsumer>();
    return slot.get();
  };
  events.on_job_end = [&](size_t index, const Status& status, uint64_t rows) {
    std::lock_guard<std::mutex> lock(mutex);
    ends[index] = {status, rows};
  };
  enclave.StartClient(events);
  Json spec = MakeSpec({GenDataset("t", {{"rows", 9000}, {"shape", "narrow"}})});
  spec["mode"] = "job";
  spec["queries"] = {"SELECT id FROM t WHERE id < 6000", "SELECT count(*) FROM t", "DELETE FROM t"};
  ASSERT_TRUE(enclave.client->SendSpec(spec).ok());
  Json finished = log.WaitForState("job_finished");
  ASSERT_FALSE(finished.is_null()) << "no job_finished state";
  ASSERT_EQ(finished["results"].size(), 3u);
  EXPECT_EQ(finished["results"][0]["id"], "job-0");
  EXPECT_EQ(finished["results"][0]["rows"], 6000);
  EXPECT_EQ(finished["results"][2]["code"], "permission_denied");

  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(ends.size(), 3u);
  EXPECT_TRUE(ends[0].first.ok());
  EXPECT_EQ(ends[0].second, 6000u);
  EXPECT_EQ(results[0]->rows, 6000u);
  EXPECT_EQ(results[1]->ScalarInt(), 9000);
  EXPECT_EQ(ends[2].first.code(), StatusCode::kPermissionDenied);
}

TEST(EnclaveRuntime, ShutdownEndsTheRuntimeAndClosingMidIngestionAbortsIt) {
  {
    InProcessEnclave enclave;
    EventLog log;
    enclave.StartClient(log.Events());
    ASSERT_TRUE(
        enclave.client->SendSpec(MakeSpec({GenDataset("t", {{"rows", 10}, {"shape", "narrow"}})}))
            .ok());
    ASSERT_EQ(log.WaitForOutcome().value("state", ""), "sealed");
    enclave.client->Close();
    EXPECT_TRUE(enclave.WaitFinished());
    EXPECT_TRUE(enclave.status().ok()) << enclave.status().ToString();
  }
  {
    // A pull that would take minutes: closing the channel stops it promptly.
    InProcessEnclave enclave;
    EventLog log;
    enclave.StartClient(log.Events());
    ASSERT_TRUE(enclave.client
                    ->SendSpec(MakeSpec({GenDataset(
                        "slow", {{"rows", 1000000}, {"batch_rows", 100}, {"delay_ms", 50}})}))
                    .ok());
    ASSERT_FALSE(log.WaitForState("ingesting").is_null());
    const auto start = std::chrono::steady_clock::now();
    enclave.client->Close();
    EXPECT_TRUE(enclave.WaitFinished(5s));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  }
}

TEST(EnclaveRuntime, QueriesBeforeSealingAreRefused) {
  InProcessEnclave enclave;
  EventLog log;
  enclave.StartClient(log.Events());
  ASSERT_TRUE(enclave.client
                  ->SendSpec(MakeSpec({GenDataset(
                      "slow", {{"rows", 100000}, {"batch_rows", 100}, {"delay_ms", 20}})}))
                  .ok());
  ASSERT_FALSE(log.WaitForState("ingesting").is_null());
  CollectingConsumer out;
  Status status = enclave.client->Query("SELECT 1", out, 5s);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("not sealed"));
}

}  // namespace
}  // namespace airlock::enclave
