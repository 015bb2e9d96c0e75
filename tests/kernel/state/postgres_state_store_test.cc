// What only the PostgreSQL backend has to show, against a real PostgreSQL 15
// started by the test (tests/support/postgres): replicas racing on one row,
// one round trip per group, replicas claiming outbox messages at once, a
// server restart ridden out without reopening,
// the schema's versions, TLS verify-full, and a connection string that never
// appears in an error.
#include "kernel/state/postgres_state_store.h"

#include <atomic>
#include <barrier>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/kernel/state/state_backends.h"
#include "tests/kernel/state/state_test_records.h"

namespace airlock::test {
namespace {

std::unique_ptr<PostgresStateStore> OpenPg(const std::string& dsn,
                                           PostgresStateStoreOptions options) {
  auto store = PostgresStateStore::Open(Secret(std::string(dsn)), options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::unique_ptr<PostgresStateStore> OpenPg(const PgStateDatabase& db) {
  return OpenPg(db.dsn, PgStateOptions(PgCluster::Shared()));
}

void ExpectNoSecretIn(const Status& status, const std::string& dsn) {
  const std::string& message = status.message();
  EXPECT_EQ(message.find(kStatePassword), std::string::npos) << message;
  EXPECT_EQ(message.find(dsn), std::string::npos) << message;
  EXPECT_EQ(message.find("password="), std::string::npos) << message;
}

void ExpectNoMessages(StateStore& store) {
  auto counts = store.CountOutbox("");
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->pending + counts->delivered + counts->abandoned, 0);
}

// Two stores on one database are two replicas: each round both save the
// next version of the same request at once (several threads each, so the
// contested saves sit in groups with others); exactly one of all the
// contenders wins, and the row holds the winner's write.
TEST(PostgresStateStoreTest, ReplicasRacingTheSameVersionHaveExactlyOneWinner) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  auto a = OpenPg(db);
  auto b = OpenPg(db);
  ASSERT_TRUE(a && b);
  constexpr int kRounds = 40;
  constexpr int kPerReplica = 3;
  StateStore* replicas[] = {a.get(), b.get()};
  for (int round = 0; round < kRounds; ++round) {
    const std::string id = "race-" + std::to_string(round);
    // Odd rounds race the insert itself.
    const bool race_insert = round % 2 == 1;
    if (!race_insert) {
      ASSERT_TRUE(a->Save(MakeRecord(id, round)).ok());
    }
    std::barrier start(2 * kPerReplica);
    std::atomic<int> wins{0}, conflicts{0}, other{0};
    std::string winner;
    std::mutex winner_mu;
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r) {
      for (int t = 0; t < kPerReplica; ++t) {
        threads.emplace_back([&, r, t] {
          RequestRecord record = MakeRecord(id, round);
          if (!race_insert) record.version = 2;
          record.reason = "replica " + std::to_string(r) + " thread " + std::to_string(t);
          // A neighbour in the same group that must commit regardless.
          RequestRecord own =
              MakeRecord(id + "-own-" + std::to_string(r) + "-" + std::to_string(t), round);
          start.arrive_and_wait();
          std::thread neighbour([&] {
            if (!replicas[r]->Save(own).ok()) ++other;
          });
          const Status status = replicas[r]->Save(record);
          neighbour.join();
          if (status.ok()) {
            ++wins;
            std::lock_guard lock(winner_mu);
            winner = record.reason;
          } else if (status.code() == StatusCode::kConflict) {
            ++conflicts;
          } else {
            ++other;
            ADD_FAILURE() << status.ToString();
          }
        });
      }
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(wins.load(), 1) << id;
    EXPECT_EQ(conflicts.load(), 2 * kPerReplica - 1) << id;
    EXPECT_EQ(other.load(), 0) << id;
    for (StateStore* replica : replicas) {
      const RequestRecord stored = LoadOrDie(*replica, id);
      EXPECT_EQ(stored.version, race_insert ? 1 : 2);
      EXPECT_EQ(stored.reason, winner);
    }
  }
}

// Many Saves from many threads: one statement (one round trip, one
// transaction) per group, and far fewer groups than Saves.
TEST(PostgresStateStoreTest, ConcurrentSavesShareOneRoundTripPerGroup) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  auto store = OpenPg(db);
  ASSERT_TRUE(store);
  constexpr int kThreads = 32;
  constexpr int kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!store->Save(MakeRecord("g" + std::to_string(t) + "-" + std::to_string(i), i)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->save_count(), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(store->round_trip_count(), store->commit_count()) << "a group took more than one";
  EXPECT_LT(store->commit_count(), uint64_t{kThreads * kPerThread} / 2)
      << "group commit barely grouped";
  RecordProperty("groups", std::to_string(store->commit_count()));
  const auto rows = PgCluster::Shared().Query("SELECT count(*) FROM requests", db.name);
  EXPECT_EQ(rows.at(0).at(0).value_or(""), std::to_string(kThreads * kPerThread));
}

// The save function applies a group again after a lost answer without
// conflicting with itself: the write token recognises its own write.
TEST(PostgresStateStoreTest, ASaveSentAgainFindsItsOwnWrite) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  PgCluster& pg = PgCluster::Shared();
  const std::string group = R"('[{"id":"r","state":"submitted","version":1,"subject":"a",
    "created":1,"updated":1,"deadline":0,"reason":"","token":"t1","requester":"{}",
    "request":"{}","decision":"{}","approvals":"[]","enclave":"{}","tunnel":"{}"}]')";
  const std::string call = "SELECT applied FROM airlock_save_requests(" + group + "::jsonb)";
  EXPECT_EQ(pg.Query(call, db.name).at(0).at(0).value_or(""), "t");
  EXPECT_EQ(pg.Query(call, db.name).at(0).at(0).value_or(""), "t");  // sent again
  std::string other = call;
  other.replace(other.find("\"t1\""), 4, "\"t2\"");
  EXPECT_EQ(pg.Query(other, db.name).at(0).at(0).value_or(""), "f");  // someone else
}

// The group sent again after a lost answer queues its messages once, with
// the write that found its own token; a save of a replica of the previous
// release (no "outbox" in its entry) still applies.
TEST(PostgresStateStoreTest, ASaveSentAgainQueuesItsMessagesOnce) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  PgCluster& pg = PgCluster::Shared();
  const std::string group = R"('[{"id":"r","state":"submitted","version":1,"subject":"a",
    "created":1,"updated":1,"deadline":0,"reason":"","token":"t1","requester":"{}",
    "request":"{}","decision":"{}","approvals":"[]","enclave":"{}","tunnel":"{}",
    "outbox":[{"id":"r/1","notifier":"hook","request_id":"r","payload":"{\"x\":1}",
    "created":1,"next":2,"attempts":0,"error":""}]}]')";
  const std::string call = "SELECT applied FROM airlock_save_requests(" + group + "::jsonb)";
  const std::string count = "SELECT count(*) FROM notification_outbox";
  EXPECT_EQ(pg.Query(call, db.name).at(0).at(0).value_or(""), "t");
  EXPECT_EQ(pg.Query(call, db.name).at(0).at(0).value_or(""), "t");  // sent again
  EXPECT_EQ(pg.Query(count, db.name).at(0).at(0).value_or(""), "1");
  EXPECT_EQ(pg.Query("SELECT payload FROM notification_outbox", db.name).at(0).at(0).value_or(""),
            "{\"x\":1}");
  std::string other = call;
  other.replace(other.find("\"t1\""), 4, "\"t2\"");
  other.replace(other.find("\"r/1\""), 5, "\"r/2\"");
  EXPECT_EQ(pg.Query(other, db.name).at(0).at(0).value_or(""), "f");  // someone else
  EXPECT_EQ(pg.Query(count, db.name).at(0).at(0).value_or(""), "1");

  const std::string previous = R"('[{"id":"p","state":"submitted","version":1,"subject":"a",
    "created":1,"updated":1,"deadline":0,"reason":"","token":"t3","requester":"{}",
    "request":"{}","decision":"{}","approvals":"[]","enclave":"{}","tunnel":"{}"}]')";
  EXPECT_EQ(pg.Query("SELECT applied FROM airlock_save_requests(" + previous + "::jsonb)", db.name)
                .at(0)
                .at(0)
                .value_or(""),
            "t");
  EXPECT_EQ(pg.Query(count, db.name).at(0).at(0).value_or(""), "1");
}

// An entry with a "tenant" writes it; one without (a replica of the
// previous release, during an upgrade) gets its requester's string
// "tenant", or '' when that is missing or not a string, on insert and on
// update alike: what the migration backfills too.
TEST(PostgresStateStoreTest, AnEntryWithoutATenantTakesItsRequestersTenant) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  PgCluster& pg = PgCluster::Shared();
  const auto save = [&](const std::string& id, int version, const std::string& requester,
                        const std::string& tenant_key) {
    const std::string group = "'[{\"id\":\"" + id +
                              "\",\"state\":\"submitted\",\"version\":" + std::to_string(version) +
                              ",\"subject\":\"a\",\"created\":1,\"updated\":1,\"deadline\":0,"
                              "\"reason\":\"\",\"token\":\"t\",\"requester\":" +
                              requester + tenant_key +
                              ",\"request\":\"{}\",\"decision\":\"{}\",\"approvals\":\"[]\","
                              "\"enclave\":\"{}\",\"tunnel\":\"{}\"}]'";
    return pg.Query("SELECT applied FROM airlock_save_requests(" + group + "::jsonb)", db.name)
        .at(0)
        .at(0)
        .value_or("");
  };
  const auto tenant = [&](const std::string& id) {
    return pg.Query("SELECT tenant FROM requests WHERE id = '" + id + "'", db.name)
        .at(0)
        .at(0)
        .value_or("NULL");
  };
  EXPECT_EQ(save("given", 1, R"("{\"tenant\":\"acme\"}")", R"(,"tenant":"globex")"), "t");
  EXPECT_EQ(tenant("given"), "globex");
  EXPECT_EQ(save("string", 1, R"("{\"tenant\":\"acme\"}")", ""), "t");
  EXPECT_EQ(tenant("string"), "acme");
  EXPECT_EQ(save("number", 1, R"("{\"tenant\":7}")", ""), "t");
  EXPECT_EQ(tenant("number"), "");
  EXPECT_EQ(save("absent", 1, R"("{}")", ""), "t");
  EXPECT_EQ(tenant("absent"), "");
  // PostgreSQL reads no text with a NUL character: it reads as U+FFFD, and
  // one elsewhere in the document does not hide the tenant.
  EXPECT_EQ(save("nul", 1, R"("{\"tenant\":\"a\\u0000b\"}")", ""), "t");
  EXPECT_EQ(tenant("nul"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(save("nul-elsewhere", 1, R"("{\"groups\":[\"\\u0000\"],\"tenant\":\"acme\"}")", ""),
            "t");
  EXPECT_EQ(tenant("nul-elsewhere"), "acme");
  EXPECT_EQ(save("string", 2, R"("{\"tenant\":\"initech\"}")", ""), "t");
  EXPECT_EQ(tenant("string"), "initech");
  EXPECT_EQ(save("number", 2, R"("{\"tenant\":\"acme\"}")", R"(,"tenant":"")"), "t");
  EXPECT_EQ(tenant("number"), "");
}

// Column text cannot hold a NUL byte: a requester whose tenant has one is
// refused, and a tenant filter with one matches nothing (never a tenant
// cut short at the NUL).
TEST(PostgresStateStoreTest, ATenantWithANulByteIsRefused) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  auto store = OpenPg(db);
  ASSERT_TRUE(store);
  RequestRecord acme = MakeRecord("acme", 1);
  acme.requester["tenant"] = "acme";
  ASSERT_TRUE(store->Save(acme).ok());
  RequestRecord nul = MakeRecord("nul", 2);
  nul.requester["tenant"] = std::string("acme\0x", 6);
  EXPECT_EQ(store->Save(nul).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(store->Load("nul")->has_value());
  RequestFilter filter;
  filter.tenant = std::string("acme\0x", 6);
  auto page = store->List(filter);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->records.empty());
  filter.tenant = "acme";
  page = store->List(filter);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].id, "acme");
}

// Two replicas (two stores on one database) claiming batches at once until
// nothing is left: every message is handed out once, to exactly one of
// them, and the row names that claimer.
TEST(PostgresStateStoreTest, ReplicasClaimingAtOnceNeverGetTheSameMessage) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  auto a = OpenPg(db);
  auto b = OpenPg(db);
  ASSERT_TRUE(a && b);
  constexpr int kMessages = 200;
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < kMessages; ++i) {
    messages.push_back(MakeMessage("m" + std::to_string(i), "hook", i % 13, i));
  }
  ASSERT_TRUE(a->EnqueueOutbox(messages).ok());
  // Both connected before the race starts, so that neither drains the
  // outbox while the other is still connecting.
  ASSERT_TRUE(b->CountOutbox("hook").ok());

  constexpr int kClaimers = 2;
  StateStore* replicas[] = {a.get(), b.get()};
  std::vector<std::vector<std::string>> claimed(kClaimers);
  std::atomic<int> failures{0};
  std::barrier start(kClaimers);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClaimers; ++c) {
    threads.emplace_back([&, c] {
      StateStore& store = *replicas[c];
      const std::string claimer = "replica-" + std::to_string(c);
      start.arrive_and_wait();
      for (int rounds = 0;; ++rounds) {
        if (rounds > kMessages) {
          ADD_FAILURE() << claimer << " never ran out of messages to claim";
          ++failures;
          return;
        }
        auto batch = store.ClaimOutbox("hook", claimer, 100, 60'000'000, 7);
        if (!batch.ok()) {
          ++failures;
          ADD_FAILURE() << batch.status().ToString();
          return;
        }
        if (batch->empty()) return;
        if (batch->size() > 7) ++failures;
        for (const OutboxMessage& m : *batch) claimed[c].push_back(m.id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::multiset<std::string> all;
  for (const auto& ids : claimed) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), size_t{kMessages}) << "a message was handed out twice";
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), size_t{kMessages});
  for (int c = 0; c < kClaimers; ++c) {
    // Both replicas took part (else the test raced nothing).
    EXPECT_FALSE(claimed[c].empty()) << "replica " << c;
  }
  const auto owners = PgCluster::Shared().Query(
      "SELECT count(DISTINCT claimed_by), count(*) FILTER (WHERE claimed_by IS NULL) "
      "FROM notification_outbox",
      db.name);
  EXPECT_EQ(owners.at(0).at(1).value_or(""), "0");
  for (int c = 0; c < kClaimers; ++c) {
    const std::string claimer = "replica-" + std::to_string(c);
    const auto rows = PgCluster::Shared().Query(
        "SELECT count(*) FROM notification_outbox WHERE claimed_by = '" + claimer + "'", db.name);
    EXPECT_EQ(rows.at(0).at(0).value_or(""), std::to_string(claimed[c].size())) << claimer;
  }
}

// Text columns cannot hold NUL bytes: such a message is refused, never cut.
TEST(PostgresStateStoreTest, AnOutboxMessageWithANulByteIsRefused) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  auto store = OpenPg(db);
  ASSERT_TRUE(store);
  OutboxMessage message = MakeMessage("m", "hook", 0);
  message.payload = std::string("{\"a\":\"x\0y\"}", 11);
  EXPECT_EQ(store->EnqueueOutbox({message}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->SaveWithOutbox(MakeRecord("r", 1), {message}).code(),
            StatusCode::kInvalidArgument);
  message.payload = "{\"bad\":\"\xff\"}";  // not UTF-8
  EXPECT_EQ(store->EnqueueOutbox({message}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->SaveWithOutbox(MakeRecord("r", 1), {message}).code(),
            StatusCode::kInvalidArgument);
  auto record = store->Load("r");
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(record->has_value());
  ExpectNoMessages(*store);
}

// The server stops under the store: calls answer Unavailable with the
// reason (and no secret); after the server is back the same store serves
// again without being reopened.
TEST(PostgresStateStoreTest, AStoppedServerGivesUnavailableAndTheStoreResumesAfterRestart) {
  auto cluster = PgCluster::Start();
  const PgStateDatabase db = CreatePgStateDatabase(*cluster);
  auto store = OpenPg(db.dsn, PgStateOptions(*cluster));
  ASSERT_TRUE(store);
  RequestRecord record = MakeRecord("survivor", 1);
  ASSERT_TRUE(store->Save(record).ok());
  ASSERT_TRUE(store->Load("survivor").ok());

  cluster->StopServer();
  record.version = 2;
  record.state = RequestState::kEvaluating;
  const Status save = store->Save(record);
  EXPECT_EQ(save.code(), StatusCode::kUnavailable) << save.ToString();
  ExpectNoSecretIn(save, db.dsn);
  auto load = store->Load("survivor");
  ASSERT_FALSE(load.ok());
  EXPECT_EQ(load.status().code(), StatusCode::kUnavailable);
  ExpectNoSecretIn(load.status(), db.dsn);
  RequestFilter filter;
  EXPECT_EQ(store->List(filter).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->LoadActive().status().code(), StatusCode::kUnavailable);
  EXPECT_NE(save.message().find("127.0.0.1"), std::string::npos)
      << "the reason names the server: " << save.message();

  cluster->StartServer();
  const Status resumed = store->Save(record);
  EXPECT_TRUE(resumed.ok()) << resumed.ToString();
  EXPECT_EQ(LoadOrDie(*store, "survivor").version, 2);
  auto active = store->LoadActive();
  ASSERT_TRUE(active.ok()) << active.status().ToString();
  EXPECT_EQ(active->size(), 1u);
}

// A connection dropped by the server between calls (an administrator, a
// failover of the database) is replaced on the next call, which succeeds.
TEST(PostgresStateStoreTest, AConnectionKilledBetweenCallsIsReplacedTransparently) {
  const PgStateDatabase db = CreatePgStateDatabase(PgCluster::Shared());
  auto store = OpenPg(db);
  ASSERT_TRUE(store);
  RequestRecord record = MakeRecord("k", 1);
  ASSERT_TRUE(store->Save(record).ok());
  ASSERT_TRUE(store->Load("k").ok());
  const auto killed = PgCluster::Shared().Query(
      "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = '" +
      db.name + "' AND application_name = 'airlockd') t");
  ASSERT_GE(std::stoi(killed.at(0).at(0).value_or("0")), 2);  // the writer and a reader
  record.version = 2;
  const Status saved = store->Save(record);
  EXPECT_TRUE(saved.ok()) << saved.ToString();
  EXPECT_EQ(LoadOrDie(*store, "k").version, 2);
}

TEST(PostgresStateStoreTest, MigrateCreatesTheSchemaOnceAndOpenRefusesAnUnmigratedDatabase) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg, /*migrate=*/false);
  const auto options = PgStateOptions(pg);
  auto unmigrated = PostgresStateStore::Open(Secret(std::string(db.dsn)), options);
  ASSERT_FALSE(unmigrated.ok());
  EXPECT_EQ(unmigrated.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(unmigrated.status().message().find("airlockd state migrate"), std::string::npos)
      << unmigrated.status().message();

  // Migrators racing (several hosts deploying at once) apply it once.
  std::vector<Result<SchemaMigrationReport>> reports(4, Status::Unknown("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < reports.size(); ++i) {
    threads.emplace_back(
        [&, i] { reports[i] = PostgresStateStore::Migrate(Secret(std::string(db.dsn)), options); });
  }
  for (auto& thread : threads) thread.join();
  int created = 0;
  for (const auto& report : reports) {
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->to_version, PostgresStateSchemaVersion());
    if (report->from_version == 0) ++created;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(pg.Query("SELECT count(*) FROM schema_version", db.name).at(0).at(0).value_or(""),
            std::to_string(PostgresStateSchemaVersion()));
  EXPECT_TRUE(OpenPg(db));
}

// A database of schema version 11 (requests without their tenant column)
// migrates to 12: every request gets the tenant of its requester document,
// and List filters by it.
TEST(PostgresStateStoreTest, MigrateBackfillsTheTenantOfRequestsSavedBeforeTheColumn) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  {
    auto store = OpenPg(db);
    ASSERT_TRUE(store);
    SaveRequestsOfEveryTenantShape(*store);
  }
  pg.Exec(
      "DROP INDEX requests_by_tenant; ALTER TABLE requests DROP COLUMN tenant; "
      "DROP FUNCTION airlock_requester_tenant(text); DELETE FROM schema_version "
      "WHERE version >= 12",
      db.name);
  EXPECT_FALSE(PostgresStateStore::Open(Secret(std::string(db.dsn)), PgStateOptions(pg)).ok())
      << "a kernel started on the older schema";

  auto migrated = PostgresStateStore::Migrate(Secret(std::string(db.dsn)), PgStateOptions(pg));
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  EXPECT_EQ(migrated->from_version, 11);
  EXPECT_EQ(migrated->to_version, 12);
  EXPECT_EQ(PostgresStateSchemaVersion(), 12);
  EXPECT_EQ(
      pg.Query("SELECT count(*) FROM pg_indexes WHERE indexname = 'requests_by_tenant'", db.name)
          .at(0)
          .at(0)
          .value_or(""),
      "1");

  auto store = OpenPg(db);
  ASSERT_TRUE(store);
  ExpectTenantsBackfilled(*store);
}

TEST(PostgresStateStoreTest, RefusesASchemaNewerThanTheBinary) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  pg.Exec("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')",
          db.name);
  auto store = PostgresStateStore::Open(Secret(std::string(db.dsn)), PgStateOptions(pg));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("99"), std::string::npos) << store.status().message();
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().message();

  auto migrated = PostgresStateStore::Migrate(Secret(std::string(db.dsn)), PgStateOptions(pg));
  ASSERT_FALSE(migrated.ok());
  EXPECT_EQ(migrated.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(migrated.status().message().find("99"), std::string::npos);
  EXPECT_EQ(pg.Query("SELECT max(version) FROM schema_version", db.name).at(0).at(0), "99");
}

// The store's connections are TLS, verified against the configured CA; a
// CA that did not issue the server's certificate is refused.
TEST(PostgresStateStoreTest, VerifyFullTlsIsUsedAndAWrongCaIsRefused) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  auto store = OpenPg(db);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Save(MakeRecord("tls", 1)).ok());
  const auto plain = pg.Query(
      "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '" +
      db.name + "' AND a.application_name = 'airlockd' AND NOT s.ssl");
  const auto encrypted = pg.Query(
      "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '" +
      db.name + "' AND a.application_name = 'airlockd' AND s.ssl");
  EXPECT_EQ(plain.at(0).at(0).value_or(""), "0");
  EXPECT_NE(encrypted.at(0).at(0).value_or("0"), "0");

  PostgresStateStoreOptions wrong_ca = PgStateOptions(pg);
  wrong_ca.tls.ca_file = pg.other_ca_file();
  auto refused = PostgresStateStore::Open(Secret(std::string(db.dsn)), wrong_ca);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("certificate"), std::string::npos)
      << refused.status().message();
  ExpectNoSecretIn(refused.status(), db.dsn);
}

// Whatever fails (a wrong password, a malformed string, a server that is
// not there, in key=value or URI form), the error names the server at most,
// never the connection string or a password.
TEST(PostgresStateStoreTest, TheConnectionStringNeverAppearsInAnError) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  const std::string port = std::to_string(pg.port());
  const std::string wrong_password = "wrong-Pw-5e0c1a2b";
  struct Case {
    std::string dsn;
    StatusCode code;
  };
  const std::vector<Case> cases = {
      {"host=127.0.0.1 port=" + port + " dbname=" + db.name + " user=" + kStateRole +
           " password=" + wrong_password,
       StatusCode::kUnavailable},
      {"postgresql://" + std::string(kStateRole) + ":" + wrong_password + "@127.0.0.1:" + port +
           "/" + db.name,
       StatusCode::kUnavailable},
      {"host=127.0.0.1 port=1 user=x password=" + wrong_password, StatusCode::kUnavailable},
      {"host=127.0.0.1 password='" + wrong_password + " port", StatusCode::kInvalidArgument},
      {"postgresql://u:" + wrong_password + "@127.0.0.1:" + port + "/db?bogus_option=1",
       StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto store = PostgresStateStore::Open(Secret(std::string(c.dsn)), PgStateOptions(pg));
    ASSERT_FALSE(store.ok()) << c.dsn;
    EXPECT_EQ(store.status().code(), c.code) << store.status().ToString();
    const std::string& message = store.status().message();
    EXPECT_EQ(message.find(wrong_password), std::string::npos) << message;
    EXPECT_EQ(message.find(c.dsn), std::string::npos) << message;
    auto migrated = PostgresStateStore::Migrate(Secret(std::string(c.dsn)), PgStateOptions(pg));
    ASSERT_FALSE(migrated.ok());
    EXPECT_EQ(migrated.status().message().find(wrong_password), std::string::npos)
        << migrated.status().message();
  }
}

}  // namespace
}  // namespace airlock::test
