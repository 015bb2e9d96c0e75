// The audit chain in PostgreSQL (kernel/audit/postgres_audit_log.h) against
// a real PostgreSQL 15 started by the test (tests/support/postgres): several
// logs on one database append one chain that the file verifier accepts, a
// chain changed in the database is refused, and a database that goes away
// fails appends closed until it is back.
#include "kernel/audit/postgres_audit_log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/audit/audit_verify.h"
#include "tests/kernel/audit/audit_search_contract.h"
#include "tests/kernel/state/state_backends.h"
#include "tests/support/temp_dir.h"

namespace airlock::test {
namespace {

using nlohmann::json;

PostgresAuditOptions AuditOptionsFor(const PgCluster& cluster) {
  PostgresAuditOptions options;
  options.tls = PgStateOptions(cluster).tls;
  return options;
}

std::unique_ptr<AuditLog> OpenOrDie(const PgStateDatabase& db, PostgresAuditOptions options) {
  auto log = OpenPostgresAuditLog(Secret(std::string(db.dsn)), std::move(options));
  if (!log.ok()) throw std::runtime_error(log.status().ToString());
  return std::move(log).value();
}

std::unique_ptr<AuditLog> OpenOrDie(const PgStateDatabase& db, const PgCluster& cluster) {
  return OpenOrDie(db, AuditOptionsFor(cluster));
}

// Exports the chain to `path` with its anchor and verifies it as a file.
AuditVerifyReport ExportAndVerify(const PgStateDatabase& db, const PgCluster& cluster,
                                  const std::string& path, AuditHead* head = nullptr) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  auto exported = ExportPostgresAudit(
      Secret(std::string(db.dsn)), AuditOptionsFor(cluster), [&](std::string_view lines) {
        out.write(lines.data(), static_cast<std::streamsize>(lines.size()));
        return Status::Ok();
      });
  out.close();
  if (!exported.ok()) throw std::runtime_error(exported.status().ToString());
  std::ofstream(path + ".head", std::ios::binary | std::ios::trunc)
      << FormatAuditAnchor(exported->head);
  if (head != nullptr) *head = exported->head;
  EXPECT_EQ(exported->records, exported->head.seq);
  return VerifyAuditFile(path);
}

std::vector<json> ReadLines(const std::string& path) {
  std::vector<json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) records.push_back(json::parse(line));
  return records;
}

TEST(PostgresAuditLogTest, TwoReplicasAppendOneChainThatVerifies) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  auto a = OpenOrDie(db, pg);
  auto b = OpenOrDie(db, pg);
  EXPECT_EQ(a->path(),
            "postgres airlock_state@127.0.0.1:" + std::to_string(pg.port()) + "/" + db.name);

  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AuditLog& log = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < kPerThread; ++i) {
        const std::string tag = std::to_string(t) + "-" + std::to_string(i);
        Status status;
        if (i % 10 == 0) {
          // Three steps of one operation: consecutive, one commit.
          status = log.AppendAll({{{"event", "step.1"}, {"tag", tag}},
                                  {{"event", "step.2"}, {"tag", tag}},
                                  {{"event", "step.3"}, {"tag", tag}}});
        } else {
          status = log.Append({{"event", "single"}, {"tag", tag}, {"request_id", "r" + tag}});
        }
        if (!status.ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  TempDir dir;
  AuditHead head;
  const AuditVerifyReport report = ExportAndVerify(db, pg, dir.File("export.log"), &head);
  ASSERT_TRUE(report.ok) << report.problem;
  EXPECT_TRUE(report.anchor_checked);
  const uint64_t expected = kThreads * (kPerThread + 2 * (kPerThread / 10));
  EXPECT_EQ(report.records, expected);
  EXPECT_EQ(head.seq, expected);

  const std::vector<json> records = ReadLines(dir.File("export.log"));
  ASSERT_EQ(records.size(), expected);
  std::set<std::string> singles;
  for (size_t i = 0; i < records.size(); ++i) {
    const json& r = records[i];
    EXPECT_EQ(r["seq"].get<uint64_t>(), i + 1);
    if (r["event"] == "single") singles.insert(r["tag"].get<std::string>());
    if (r["event"] == "step.1") {
      ASSERT_LT(i + 2, records.size());
      EXPECT_EQ(records[i + 1]["event"], "step.2");
      EXPECT_EQ(records[i + 2]["event"], "step.3");
      EXPECT_EQ(records[i + 2]["tag"], r["tag"]);
      EXPECT_EQ(records[i + 2]["ts"], r["ts"]);  // one commit, one database time
    }
    if (i > 0) {
      EXPECT_GE(r["ts"].get<std::string>(), records[i - 1]["ts"].get<std::string>());
    }
  }
  EXPECT_EQ(singles.size(), static_cast<size_t>(kThreads * (kPerThread - kPerThread / 10)));

  // Each log's head is a true point of the shared chain: the hash of the
  // record at its seq (what its checkpoints sign).
  for (AuditLog* log : {a.get(), b.get()}) {
    const AuditHead own = log->head();
    ASSERT_GT(own.seq, 0u);
    EXPECT_EQ(records.at(own.seq - 1)["hash"], own.hash);
  }
  EXPECT_GT(a->flush_count(), 0u);
}

TEST(PostgresAuditLogTest, ForRequestReadsEveryReplicasRecordsInOrder) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  auto a = OpenOrDie(db, pg);
  auto b = OpenOrDie(db, pg);
  ASSERT_TRUE(a->Append({{"event", "request.submitted"}, {"request_id", "req-1"}}).ok());
  ASSERT_TRUE(b->Append({{"event", "request.approved"}, {"request_id", "req-1"}}).ok());
  ASSERT_TRUE(a->Append({{"event", "other"}, {"request_id", "req-2"}}).ok());
  ASSERT_TRUE(a->Append({{"event", "request.closed"}, {"request_id", "req-1"}}).ok());

  auto all = b->ForRequest("req-1", 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0]["event"], "request.submitted");
  EXPECT_EQ((*all)[1]["event"], "request.approved");
  EXPECT_EQ((*all)[2]["event"], "request.closed");
  EXPECT_LT((*all)[1]["seq"].get<uint64_t>(), (*all)[2]["seq"].get<uint64_t>());
  auto first_two = a->ForRequest("req-1", 2);
  ASSERT_TRUE(first_two.ok());
  EXPECT_EQ(first_two->size(), 2u);
  auto none = a->ForRequest("req-none", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(PostgresAuditLogTest, TheChainKeepsTheSearchContract) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  auto log = OpenOrDie(db, pg);
  testing_audit::CheckAuditSearchContract(*log);
  // Another replica's reader sees the same chain.
  auto other = OpenOrDie(db, pg);
  auto newest = other->ReadBackward(std::nullopt, 1);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].record.value("seq", 0),
            testing_audit::kSearchRecords + 1);  // the contract appends one last
}

TEST(PostgresAuditLogTest, BadEventsAreRefusedAndAppendNothing) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  PostgresAuditOptions options = AuditOptionsFor(pg);
  options.log.max_record_bytes = 512;
  auto log = OpenOrDie(db, std::move(options));
  ASSERT_TRUE(log->Append({{"event", "first"}}).ok());

  EXPECT_EQ(log->Append(json::array({1, 2})).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"no_event", 1}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"event", "x"}, {"seq", 7}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"event", "x"}, {"request_id", 5}}).code(), StatusCode::kInvalidArgument);
  // One malformed event in a group: nothing of the group is appended.
  EXPECT_EQ(log->AppendAll({{{"event", "ok"}}, {{"event", ""}}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(log->head().seq, 1u);
  // Too large: refused alone; the rest of its group is appended.
  EXPECT_EQ(
      log->AppendAll({{{"event", "small"}}, {{"event", "big"}, {"pad", std::string(600, 'p')}}})
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(log->head().seq, 2u);
  EXPECT_TRUE(log->health().ok());
  EXPECT_EQ(pg.Query("SELECT count(*) FROM audit_records", db.name).at(0).at(0), "2");

  TempDir dir;
  const AuditVerifyReport report = ExportAndVerify(db, pg, dir.File("export.log"));
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 2u);
}

// The append observer hears each append after its commit with the
// caller's own events, handed back by the writer thread, and a refused
// group with its failure.
TEST(PostgresAuditLogTest, TheAppendObserverHearsTheCallersEvents) {
  struct Observer : AuditAppendObserver {
    std::vector<std::pair<std::vector<std::string>, StatusCode>> heard;
    void OnAppended(const std::vector<json>& events, const Status& status,
                    std::chrono::steady_clock::duration) override {
      std::vector<std::string> names;
      for (const json& event : events) names.push_back(event.value("event", ""));
      heard.emplace_back(std::move(names), status.code());
    }
  } observer;
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  auto log = OpenOrDie(db, pg);
  log->set_append_observer(&observer);
  ASSERT_TRUE(log->AppendAll({{{"event", "a"}}, {{"event", "b"}}}).ok());
  EXPECT_EQ(log->Append({{"event", "x"}, {"seq", 7}}).code(), StatusCode::kInvalidArgument);
  log->set_append_observer(nullptr);
  ASSERT_TRUE(log->Append({{"event", "unheard"}}).ok());
  ASSERT_EQ(observer.heard.size(), 2u);
  EXPECT_EQ(observer.heard[0].first, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(observer.heard[0].second, StatusCode::kOk);
  EXPECT_EQ(observer.heard[1].first, (std::vector<std::string>{"x"}));
  EXPECT_EQ(observer.heard[1].second, StatusCode::kInvalidArgument);
  EXPECT_EQ(log->head().seq, 3u);
}

TEST(PostgresAuditLogTest, OpenRefusesAChainChangedInTheDatabase) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  AuditHead point;
  {
    auto log = OpenOrDie(db, pg);
    for (int i = 1; i <= 5; ++i) {
      ASSERT_TRUE(log->Append({{"event", "e" + std::to_string(i)}, {"who", "bob"}}).ok());
    }
    point = log->head();
  }
  auto open = [&](std::vector<AuditHead> points = {}) {
    PostgresAuditOptions options = AuditOptionsFor(pg);
    options.log.trusted_points = std::move(points);
    return OpenPostgresAuditLog(Secret(std::string(db.dsn)), std::move(options));
  };
  ASSERT_TRUE(open({point}).ok());

  // A record edited in place (who approved): the chain breaks at it.
  pg.Exec("CREATE TABLE saved AS SELECT * FROM audit_records", db.name);
  pg.Exec(
      "UPDATE audit_records SET line = replace(line, '\"who\":\"bob\"', '\"who\":\"eve\"') "
      "WHERE seq = 3",
      db.name);
  auto edited = open();
  ASSERT_FALSE(edited.ok());
  EXPECT_EQ(edited.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(edited.status().message().find("damaged at seq 3"), std::string::npos)
      << edited.status().ToString();
  pg.Exec("UPDATE audit_records r SET line = s.line FROM saved s WHERE r.seq = s.seq", db.name);
  ASSERT_TRUE(open().ok());

  // The last record removed: the head row still names it.
  pg.Exec("DELETE FROM audit_records WHERE seq = 5", db.name);
  auto removed = open();
  ASSERT_FALSE(removed.ok());
  EXPECT_NE(removed.status().message().find("head row says seq 5 but the records end at seq 4"),
            std::string::npos)
      << removed.status().ToString();

  // ... and the head moved back too (whoever can write the database can):
  // only a signed checkpoint still tells.
  pg.Exec("UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_records WHERE seq = 4)",
          db.name);
  EXPECT_TRUE(open().ok());
  auto truncated = open({point});
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("contradicts its signed checkpoints"),
            std::string::npos)
      << truncated.status().ToString();
}

TEST(PostgresAuditLogTest, ADatabaseThatGoesAwayFailsAppendsClosedAndTheLogRecovers) {
  auto cluster = PgCluster::Start();
  const PgStateDatabase db = CreatePgStateDatabase(*cluster);
  auto log = OpenOrDie(db, *cluster);
  ASSERT_TRUE(log->Append({{"event", "before"}}).ok());

  cluster->StopServer();
  const Status failed = log->Append({{"event", "while-down"}});
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable) << failed.ToString();
  EXPECT_NE(failed.message().find("audit log unavailable"), std::string::npos) << failed.ToString();
  EXPECT_EQ(failed.message().find(kStatePassword), std::string::npos);
  EXPECT_FALSE(log->health().ok());
  // Closed: refused at once, not queued.
  EXPECT_EQ(log->Append({{"event", "still-down"}}).code(), StatusCode::kUnavailable);

  cluster->StartServer();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!log->health().ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(log->health().ok()) << log->health().ToString();
  ASSERT_TRUE(log->Append({{"event", "after"}}).ok());

  TempDir dir;
  const AuditVerifyReport report = ExportAndVerify(db, *cluster, dir.File("export.log"));
  ASSERT_TRUE(report.ok) << report.problem;
  const std::vector<json> records = ReadLines(dir.File("export.log"));
  ASSERT_EQ(records.size(), 2u);  // nothing acknowledged was lost, nothing refused was kept
  EXPECT_EQ(records[0]["event"], "before");
  EXPECT_EQ(records[1]["event"], "after");
}

TEST(PostgresAuditLogTest, AnUnmigratedDatabaseIsRefusedWithWhatToDo) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg, /*migrate=*/false);
  auto log = OpenPostgresAuditLog(Secret(std::string(db.dsn)), AuditOptionsFor(pg));
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(log.status().message().find("airlockd state migrate"), std::string::npos)
      << log.status().ToString();
  EXPECT_EQ(log.status().message().find(kStatePassword), std::string::npos);
}

}  // namespace
}  // namespace airlock::test
