// Several real airlockd replicas on one real PostgreSQL database, serving
// the whole API at once: decisions made at the same moment on different
// replicas resolve to exactly one outcome, every replica answers the same
// for every request, and the one audit chain holds every transition once.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e_postgres/failover_fixture.h"
#include "tests/kernel/e2e_postgres/pg_kernel_support.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr int kReplicas = 3;
constexpr int kRequests = 200;

// What was done to one request, at once, each call on another replica.
enum class Race {
  kTwoApprovals,            // bob and carol approve: both count (2 of 2)
  kApprovalAgainstDeny,     // bob approves, carol denies: denied
  kApprovalsAgainstRevoke,  // bob and carol approve, alice revokes: closed
  kDenyAgainstRevoke,       // bob denies, alice revokes: whichever came first
};

struct Call {
  const char* token;
  std::string verb;  // approve, deny, revoke
};

struct Outcome {
  std::map<std::string, unsigned> status;  // by "<who>:<verb>"
};

std::vector<Call> CallsFor(Race race) {
  switch (race) {
    case Race::kTwoApprovals:
      return {{kPgBob, "approve"}, {kPgCarol, "approve"}};
    case Race::kApprovalAgainstDeny:
      return {{kPgBob, "approve"}, {kPgCarol, "deny"}};
    case Race::kApprovalsAgainstRevoke:
      return {{kPgBob, "approve"}, {kPgCarol, "approve"}, {kPgAlice, "revoke"}};
    case Race::kDenyAgainstRevoke:
      return {{kPgBob, "deny"}, {kPgAlice, "revoke"}};
  }
  return {};
}

std::string Who(const char* token) {
  return token == kPgBob ? "bob" : token == kPgCarol ? "carol" : "alice";
}

// Transition events of one request that took effect, by version: each
// aborted attempt cancels the event it followed.
std::map<int64_t, int> EffectiveVersions(const std::vector<json>& events) {
  std::map<int64_t, int> count;
  for (const json& e : events) {
    if (!e.contains("version")) continue;
    const std::string name = e.value("event", "");
    const int64_t version = e.value("version", int64_t{0});
    if (name.ends_with("_aborted")) {
      --count[version];
    } else {
      ++count[version];
    }
  }
  for (auto it = count.begin(); it != count.end();) {
    it = it->second == 0 ? count.erase(it) : std::next(it);
  }
  return count;
}

TEST(ReplicasE2E, ConcurrentDecisionsOnThreeReplicasEndInOneStateEach) {
  PgCluster& pg = PgCluster::Shared();
  CreateKernelRole(pg);
  const std::string database = "airlock_three_replicas";
  pg.Exec("CREATE DATABASE " + database + " OWNER airlock_kernel");

  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<KernelProcess>> kernels;
  for (int i = 0; i < kReplicas; ++i) {
    dirs.push_back(std::make_unique<TempDir>("airlock-pg-three-"));
    const std::string& dir = dirs.back()->path();
    const TestPki pki = GenerateTestPki(dir);
    WriteDsn(dir, pg, database);
    json config = PgKernelConfig(dir, pki, pg, /*approvals_needed=*/2);
    // Long leases: no replica of this test is lost, and one whose beats a
    // loaded machine delays must not be taken for lost.
    config["state"]["heartbeat_interval_ms"] = 200;
    config["state"]["lease_ttl_ms"] = 20000;
    kernels.push_back(std::make_unique<KernelProcess>(dir, config));
  }
  std::string out;
  ASSERT_EQ(RunAirlockd({"state", "migrate", "--config", kernels[0]->config_path()}, &out), 0)
      << out;
  for (auto& kernel : kernels) ASSERT_TRUE(kernel->Start()) << kernel->log();

  // Asked round-robin.
  const json ask = {{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "replicas"}};
  std::vector<std::string> ids(kRequests);
  {
    std::vector<std::thread> askers;
    std::atomic<int> failures{0};
    for (int t = 0; t < kReplicas; ++t) {
      askers.emplace_back([&, t] {
        HttpClient client("127.0.0.1", kernels[t]->port());
        for (int i = t; i < kRequests; i += kReplicas) {
          auto created = client.Post("/v1/requests", ask.dump(), Auth(kPgAlice));
          if (created.status != 201) {
            ++failures;
            continue;
          }
          ids[i] = created.json().value("id", "");
        }
      });
    }
    for (auto& t : askers) t.join();
    ASSERT_EQ(failures.load(), 0);
  }

  // Each request's calls fired at the same moment, each on another replica.
  std::vector<Outcome> outcomes(kRequests);
  {
    std::atomic<int> next{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 8; ++w) {
      workers.emplace_back([&] {
        for (int i = next++; i < kRequests; i = next++) {
          const std::vector<Call> calls = CallsFor(static_cast<Race>(i % 4));
          std::vector<unsigned> status(calls.size());
          std::vector<std::thread> racers;
          for (size_t c = 0; c < calls.size(); ++c) {
            racers.emplace_back([&, c] {
              HttpClient client("127.0.0.1", kernels[(i + c + 1) % kReplicas]->port());
              status[c] = client
                              .Post("/v1/requests/" + ids[i] + "/" + calls[c].verb,
                                    R"({"comment":"race"})", Auth(calls[c].token))
                              .status;
            });
          }
          for (auto& r : racers) r.join();
          for (size_t c = 0; c < calls.size(); ++c) {
            outcomes[i].status[Who(calls[c].token) + ":" + calls[c].verb] = status[c];
          }
        }
      });
    }
    for (auto& w : workers) w.join();
  }

  // Every replica answers the same for every request, and the outcome is
  // the one the calls' answers imply.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (auto& kernel : kernels) {
    clients.push_back(std::make_unique<HttpClient>("127.0.0.1", kernel->port()));
  }
  std::vector<std::string> approved_ids;
  for (int i = 0; i < kRequests; ++i) {
    const Race race = static_cast<Race>(i % 4);
    const auto& status = outcomes[i].status;
    std::vector<json> views;
    for (auto& client : clients) {
      auto got = client->Get("/v1/requests/" + ids[i], Auth(kPgBob));
      ASSERT_EQ(got.status, 200u) << got.body;
      views.push_back(got.json());
    }
    const std::string state = views[0].value("state", "");
    // Replicas may see an enclave's progress at different moments; a
    // decided state is the same everywhere.
    if (state == "denied" || state == "closed") {
      for (const json& v : views) {
        EXPECT_EQ(v.value("state", ""), state) << ids[i];
        EXPECT_EQ(v.value("version", 0), views[0].value("version", 0)) << ids[i];
      }
    }
    const size_t approvals = views[0]["approvals"].size();
    switch (race) {
      case Race::kTwoApprovals:
        EXPECT_EQ(status.at("bob:approve"), 200u) << ids[i];
        EXPECT_EQ(status.at("carol:approve"), 200u) << ids[i];
        EXPECT_EQ(approvals, 2u) << views[0].dump();
        EXPECT_TRUE(state == "approved" || state == "provisioning" || state == "ingesting" ||
                    state == "ready")
            << views[0].dump();
        approved_ids.push_back(ids[i]);
        break;
      case Race::kApprovalAgainstDeny:
        EXPECT_EQ(status.at("carol:deny"), 200u) << ids[i];
        EXPECT_EQ(state, "denied") << views[0].dump();
        EXPECT_EQ(approvals, status.at("bob:approve") == 200u ? 1u : 0u) << views[0].dump();
        break;
      case Race::kApprovalsAgainstRevoke:
        EXPECT_EQ(status.at("alice:revoke"), 200u) << ids[i];
        EXPECT_EQ(state, "closed") << views[0].dump();
        break;
      case Race::kDenyAgainstRevoke: {
        const bool denied = status.at("bob:deny") == 200u;
        const bool revoked = status.at("alice:revoke") == 200u;
        EXPECT_NE(denied, revoked) << ids[i] << ": exactly one decision wins";
        EXPECT_EQ(state, denied ? "denied" : "closed") << views[0].dump();
        break;
      }
    }
  }

  // The approved ones are revoked, on any replica; all end closed.
  for (size_t n = 0; n < approved_ids.size(); ++n) {
    auto revoked = clients[n % kReplicas]->Post("/v1/requests/" + approved_ids[n] + "/revoke",
                                                R"({"comment":"done"})", Auth(kPgAlice));
    EXPECT_EQ(revoked.status, 200u) << revoked.body;
  }

  // One chain, intact; every transition in it once, versions without gaps,
  // the last one the stored version.
  for (auto& kernel : kernels) kernel->Stop();
  ASSERT_EQ(RunAirlockd({"audit", "verify", "--config", kernels[0]->config_path()}, &out), 0)
      << out;
  for (const std::string& id : ids) {
    std::vector<json> events;
    for (const auto& row :
         pg.Query("SELECT line FROM audit_records WHERE request_id = '" + id + "' ORDER BY seq",
                  database)) {
      events.push_back(json::parse(row.at(0).value_or("{}")));
    }
    const auto stored = pg.Query("SELECT version FROM requests WHERE id = '" + id + "'", database);
    ASSERT_EQ(stored.size(), 1u);
    const int64_t version = std::stoll(stored[0][0].value_or("0"));
    const std::map<int64_t, int> effective = EffectiveVersions(events);
    ASSERT_EQ(static_cast<int64_t>(effective.size()), version) << id;
    int64_t expected = 1;
    for (const auto& [v, count] : effective) {
      EXPECT_EQ(v, expected++) << id;
      EXPECT_EQ(count, 1) << id << " version " << v;
    }
  }
  for (auto& kernel : kernels) {
    EXPECT_EQ(kernel->log().find(kPgPassword), std::string::npos);
  }
}

// The owner of a ready request dies: the survivor fences it, provisions the
// enclave again (same scope, data pulled again) and serves the request with
// the credential the requester already holds; the dead replica, started
// again, leaves the request to the survivor.
TEST_F(FailoverTest, ASurvivorServesTheReadyRequestOfAKilledReplica) {
  const std::string id_a = ReplicaId(a());
  const std::string id_b = ReplicaId(b());
  ASSERT_NE(id_a, id_b);
  json grant;
  const std::string id = ReadyOnA(&grant);
  EXPECT_EQ(Query(grant, pkis_[0]), 200u);
  const int64_t version_on_a = Get(a(), id).value("version", 0);

  a().Kill();
  const json view = WaitReadyOn(b(), id, id_b, std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump();
  EXPECT_GT(view.value("version", 0), version_on_a);

  // The credential collected from A works at the URL the request now shows;
  // there is no new one to collect.
  json moved_grant = grant;
  moved_grant["url"] = view["tunnel"].value("url", "");
  EXPECT_NE(moved_grant["url"], grant["url"]);
  EXPECT_EQ(Query(moved_grant, pkis_[1]), 200u);
  HttpClient client("127.0.0.1", b().port());
  EXPECT_EQ(client.Post("/v1/requests/" + id + "/credentials", "", Auth(kPgAlice)).status, 410u);
  // The shared state keeps the credential's hash for that, never the
  // credential, and no reader is shown the hash.
  EXPECT_FALSE(view["tunnel"].contains("verifier")) << view.dump();
  const std::string stored_tunnel =
      PgCluster::Shared()
          .Query("SELECT tunnel FROM requests WHERE id = '" + id + "'", database_)
          .at(0)
          .at(0)
          .value_or("");
  EXPECT_NE(stored_tunnel.find("\"verifier\":\"sha256:"), std::string::npos) << stored_tunnel;
  EXPECT_EQ(stored_tunnel.find(grant.value("credential", "?")), std::string::npos);

  // Audited: the fence, and the move with both owners named.
  bool moved = false;
  for (const json& e : AuditOf(id)) {
    if (e.value("from_replica", "") == id_a && e.value("to_replica", "") == id_b) moved = true;
  }
  EXPECT_TRUE(moved);
  EXPECT_EQ(PgCluster::Shared()
                .Query("SELECT count(*) FROM audit_records WHERE line LIKE "
                       "'%\"event\":\"replica.fenced\"%' AND line LIKE '%" +
                           id_a + "%'",
                       database_)
                .at(0)
                .at(0),
            "1");

  // A started again is a new incarnation: it does not take the request back.
  ASSERT_TRUE(a().Start()) << a().log();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const json after = Get(b(), id);
  EXPECT_EQ(after.value("state", ""), "ready") << after.dump();
  EXPECT_EQ(after["enclave"].value("owner", ""), id_b);
  EXPECT_EQ(after.value("version", 0), view.value("version", 0));
  EXPECT_EQ(Query(moved_grant, pkis_[1]), 200u);
  EXPECT_EQ(client.Post("/v1/requests/" + id + "/revoke", "{}", Auth(kPgAlice)).status, 200u);
  EXPECT_NE(Query(moved_grant, pkis_[1]), 200u);
}

// A paused owner resumed after the survivor took over does not act: its
// tunnel answers nothing more, it writes nothing, and it stops itself.
TEST_F(FailoverTest, APausedOwnerResumedAfterLosingItsLeaseDoesNotAct) {
  const std::string id_b = ReplicaId(b());
  json grant;
  const std::string id = ReadyOnA(&grant);
  EXPECT_EQ(Query(grant, pkis_[0]), 200u);

  ASSERT_EQ(::kill(a().pid(), SIGSTOP), 0);
  const json view = WaitReadyOn(b(), id, id_b, std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump();
  const int64_t version = view.value("version", 0);

  ASSERT_EQ(::kill(a().pid(), SIGCONT), 0);
  // Its lease lapsed while it slept: the old grant is refused at once.
  EXPECT_NE(Query(grant, pkis_[0]), 200u);
  const int status = a().WaitForExit(std::chrono::seconds(15));
  ASSERT_NE(status, -1) << "the fenced replica kept running";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 75) << status << "\n" << a().log();
  EXPECT_NE(a().log().find("no longer holds lease"), std::string::npos) << a().log();

  const json after = Get(b(), id);
  EXPECT_EQ(after.value("version", 0), version) << after.dump();
  EXPECT_EQ(after["enclave"].value("owner", ""), id_b);
  EXPECT_EQ(after.value("state", ""), "ready");
}

// PostgreSQL restarted while both replicas take requests: calls answer 503
// while it is down (never anything else), every acknowledged request is in
// the database afterwards, and both replicas serve again without a restart
// (neither fenced the other for the beats nobody could store).
TEST_F(FailoverTest, PostgresRestartedUnderLoadLosesNothingAcknowledged) {
  const pid_t pid_a = a().pid();
  const pid_t pid_b = b().pid();
  const json ask = {{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "load"}};
  std::atomic<bool> running{true};
  std::atomic<int> ok_after_restart{0};
  std::atomic<bool> restarted{false};
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::map<unsigned, int> answers;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      HttpClient client("127.0.0.1", (t % 2 == 0 ? a() : b()).port());
      client.set_timeout(std::chrono::seconds(20));
      while (running.load()) {
        auto created = client.Post("/v1/requests", ask.dump(), Auth(kPgAlice));
        std::lock_guard lock(mu);
        ++answers[created.status];
        if (created.status == 201) {
          acknowledged.push_back(created.json().value("id", ""));
          if (restarted.load()) ++ok_after_restart;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  PgCluster::Shared().StopServer();
  EXPECT_EQ(WaitForStatus(a().port(), "/healthz", 503, std::chrono::seconds(15)).status, 503u);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  PgCluster::Shared().StartServer();
  restarted = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ok_after_restart.load() < 20 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  running = false;
  for (auto& t : load) t.join();

  EXPECT_GE(ok_after_restart.load(), 20) << "the replicas did not serve again";
  EXPECT_GT(answers[503], 0);
  for (const auto& [status, count] : answers) {
    EXPECT_TRUE(status == 201 || status == 503) << count << " answers " << status;
  }
  // Neither replica restarted, nor stopped for a lost lease.
  EXPECT_EQ(a().pid(), pid_a);
  EXPECT_EQ(b().pid(), pid_b);
  EXPECT_EQ(a().WaitForExit(std::chrono::milliseconds(0)), -1) << a().log();
  EXPECT_EQ(b().WaitForExit(std::chrono::milliseconds(0)), -1) << b().log();
  EXPECT_EQ(WaitForStatus(b().port(), "/healthz", 200, std::chrono::seconds(15)).status, 200u);
  std::set<std::string> stored;
  for (const auto& row : PgCluster::Shared().Query("SELECT id FROM requests", database_)) {
    stored.insert(row.at(0).value_or(""));
  }
  for (const std::string& id : acknowledged) EXPECT_EQ(stored.count(id), 1u) << id;
  EXPECT_GT(acknowledged.size(), 20u);
}

// A keeps its audit log in a file, so that its tunnel could answer without
// the database: only its lease stands between a cut-off A and its enclave.
class CutOffTest : public FailoverTest {
 protected:
  void Prepare(int index, json& config, const std::string& /*dir*/) override {
    if (index == 0) config["audit"] = {{"backend", "file"}};
  }
};

// A replica that cannot renew its lease for longer than the lease stops
// answering queries by its own clock (a survivor may have taken over), and
// answers again once it renewed and nobody had.
TEST_F(CutOffTest, AReplicaCutOffLongerThanItsLeaseAnswersNoQueryUntilItRenews) {
  json grant;
  const std::string id = ReadyOnA(&grant);
  EXPECT_EQ(Query(grant, pkis_[0]), 200u);
  PgCluster::Shared().StopServer();
  std::this_thread::sleep_for(std::chrono::milliseconds(3000 + 1000));
  EXPECT_EQ(Query(grant, pkis_[0]), 503u);
  PgCluster::Shared().StartServer();
  EXPECT_EQ(WaitForStatus(a().port(), "/healthz", 200, std::chrono::seconds(15)).status, 200u);
  EXPECT_EQ(Query(grant, pkis_[0]), 200u);
  EXPECT_EQ(Get(a(), id).value("state", ""), "ready");
  EXPECT_EQ(a().WaitForExit(std::chrono::milliseconds(0)), -1) << a().log();
}

// After an outage of the database every replica's beat is old. The first
// replica back (B) must give the others a lease's time to renew before it
// takes them for lost: A, back a moment later, keeps its request.
TEST_F(FailoverTest, TheFirstReplicaBackAfterAnOutageDoesNotTakeTheOthersOver) {
  const std::string id_a = ReplicaId(a());
  json grant;
  const std::string id = ReadyOnA(&grant);
  const int64_t version = Get(a(), id).value("version", 0);
  PgCluster::Shared().StopServer();
  ASSERT_EQ(::kill(a().pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(std::chrono::seconds(4));  // longer than the lease
  PgCluster::Shared().StartServer();
  EXPECT_EQ(WaitForStatus(b().port(), "/healthz", 200, std::chrono::seconds(15)).status, 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // B's scans, A still silent
  ASSERT_EQ(::kill(a().pid(), SIGCONT), 0);
  EXPECT_EQ(WaitForStatus(a().port(), "/healthz", 200, std::chrono::seconds(15)).status, 200u);
  std::this_thread::sleep_for(std::chrono::seconds(4));  // B's beats now held for a lease
  EXPECT_EQ(a().WaitForExit(std::chrono::milliseconds(0)), -1) << a().log();
  const json view = Get(b(), id);
  EXPECT_EQ(view["enclave"].value("owner", ""), id_a) << view.dump();
  EXPECT_EQ(view.value("version", 0), version);
  EXPECT_EQ(Query(grant, pkis_[0]), 200u);
}

// Enclaves in their own processes, and A killed by a crash point at a chosen
// moment of provisioning. Orphaned enclaves of the killed kernel are
// re-parented to this process, which sees and reaps them.
class ProcessFailoverTest : public FailoverTest {
 protected:
  void Prepare(int index, json& config, const std::string& dir) override {
    (void)index;
    config["isolator"] = ProcessIsolatorRef(dir + "/enclaves", {"pid_namespace", "no_new_privs"});
  }
  void Prepare(int index, KernelProcess& kernel) override {
    if (index == 0)
      kernel.set_extra_environment({"AIRLOCK_FAULT_KILL_AFTER_AUDIT=" + crash_after_});
  }
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    FailoverTest::SetUp();
  }

  // A request approved on A, which kills itself at the crash point: B makes
  // it ready, nothing of A's enclave survives, and the request is served.
  void ExpectTakenOverFromAKilledOwner() {
    const std::string id_b = ReplicaId(b());
    HttpClient client("127.0.0.1", a().port());
    const json ask = {{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "failover"}};
    auto created = client.Post("/v1/requests", ask.dump(), Auth(kPgAlice));
    ASSERT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    // Acknowledged: it survives whatever happens to A from here.
    ASSERT_EQ(client.Post("/v1/requests/" + id + "/approve", "{}", Auth(kPgBob)).status, 200u);
    const int status = a().WaitForExit(std::chrono::seconds(30));
    ASSERT_TRUE(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << status << "\n"
        << a().log();

    const json view = WaitReadyOn(b(), id, id_b, std::chrono::seconds(30));
    ASSERT_EQ(view.value("state", ""), "ready") << view.dump();
    // The killed kernel's enclave died with it (its parent-death signal).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!EnclaveChildren(::getpid()).empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(EnclaveChildren(::getpid()).empty())
        << "an enclave of the killed replica survived it";
    EXPECT_EQ(EnclaveChildren(b().pid()).size(), 1u);

    // A never issued a credential: B's is collected once, and it works.
    HttpClient on_b("127.0.0.1", b().port());
    auto grant = on_b.Post("/v1/requests/" + id + "/credentials", "", Auth(kPgAlice));
    ASSERT_EQ(grant.status, 200u) << grant.body;
    EXPECT_EQ(Query(grant.json(), pkis_[1]), 200u);
    ASSERT_EQ(on_b.Post("/v1/requests/" + id + "/revoke", "{}", Auth(kPgAlice)).status, 200u);
    const auto gone = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!EnclaveChildren(b().pid()).empty() && std::chrono::steady_clock::now() < gone) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(EnclaveChildren(b().pid()).empty());
  }

  std::string crash_after_;
};

class KilledWhileProvisioning : public ProcessFailoverTest {
 protected:
  // Durable once the enclave process runs; the request is stored provisioning.
  void SetUp() override {
    crash_after_ = "enclave.provisioned";
    ProcessFailoverTest::SetUp();
  }
};

class KilledWhileIngesting : public ProcessFailoverTest {
 protected:
  // Durable as the data is sealed in; the request is stored ingesting.
  void SetUp() override {
    crash_after_ = "request.ready";
    ProcessFailoverTest::SetUp();
  }
};

TEST_F(KilledWhileProvisioning, ASurvivorProvisionsTheRequestAgain) {
  ExpectTakenOverFromAKilledOwner();
}

TEST_F(KilledWhileIngesting, ASurvivorProvisionsTheRequestAgain) {
  ExpectTakenOverFromAKilledOwner();
}

}  // namespace
}  // namespace airlock::test
