// A request's whole life through a real airlockd whose state backend is a
// real PostgreSQL (TLS verify-full, password from a file: secret
// reference): the kernel refuses an unmigrated database, `airlockd state
// migrate` creates the schema, every transition lands in PostgreSQL, a
// restarted kernel finds its requests there, and the connection string's
// password is in no log and no output.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e_postgres/pg_kernel_support.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/sse_watcher.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = kPgAlice;
constexpr const char* kBob = kPgBob;
constexpr const char* kPassword = kPgPassword;

json Config(const std::string& dir, const TestPki& pki, const PgCluster& pg) {
  return PgKernelConfig(dir, pki, pg);
}

// Two replicas on `database` (created here), one in each directory, each
// configuration changed by `adjust`; the database migrated, both started.
std::vector<std::unique_ptr<KernelProcess>> StartTwoReplicas(
    PgCluster& pg, const std::string& database, const TempDir& dir_a, const TempDir& dir_b,
    const std::function<void(json&)>& adjust) {
  CreateKernelRole(pg);
  pg.Exec("CREATE DATABASE " + database + " OWNER airlock_kernel");
  std::vector<std::unique_ptr<KernelProcess>> kernels;
  for (const TempDir* dir : {&dir_a, &dir_b}) {
    const TestPki pki = GenerateTestPki(dir->path());
    WriteDsn(dir->path(), pg, database);
    json config = Config(dir->path(), pki, pg);
    adjust(config);
    kernels.push_back(std::make_unique<KernelProcess>(dir->path(), config));
  }
  std::string out;
  EXPECT_EQ(RunAirlockd({"state", "migrate", "--config", kernels[0]->config_path()}, &out), 0)
      << out;
  for (auto& kernel : kernels) EXPECT_TRUE(kernel->Start()) << kernel->log();
  return kernels;
}

TEST(PostgresStateE2E, ARequestLivesItsWholeLifeInPostgres) {
  PgCluster& pg = PgCluster::Shared();
  CreateKernelRole(pg);
  pg.Exec("CREATE DATABASE airlock_e2e OWNER airlock_kernel");

  TempDir dir("airlock-pg-e2e-");
  const TestPki pki = GenerateTestPki(dir.path());
  const std::string dsn_file = dir.path() + "/state.dsn";
  std::ofstream(dsn_file) << "host=127.0.0.1 port=" << pg.port()
                          << " dbname=airlock_e2e user=airlock_kernel password=" << kPassword
                          << "\n";
  ::chmod(dsn_file.c_str(), 0600);
  KernelProcess kernel(dir.path(), Config(dir.path(), pki, pg));
  std::string out;

  // An unmigrated database: the kernel refuses to start and says what to do.
  ASSERT_FALSE(kernel.Start());
  EXPECT_NE(kernel.log().find("airlockd state migrate"), std::string::npos) << kernel.log();

  ASSERT_EQ(RunAirlockd({"state", "migrate", "--config", kernel.config_path()}, &out), 0) << out;
  // Every migration this binary knows, from none: the second run finds
  // the database at that version and changes nothing.
  std::smatch migrated;
  ASSERT_TRUE(std::regex_search(out, migrated, std::regex("migrated from version 0 to (\\d+)")))
      << out;
  EXPECT_GE(std::stoi(migrated[1].str()), 11) << out;
  const std::string latest = migrated[1].str();
  EXPECT_EQ(out.find(kPassword), std::string::npos) << out;
  ASSERT_EQ(RunAirlockd({"state", "migrate", "--config", kernel.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("already at version " + latest), std::string::npos) << out;

  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient client("127.0.0.1", kernel.port());
  auto created = client.Post(
      "/v1/requests",
      json{{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "pg e2e"}}.dump(),
      Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  EXPECT_EQ(created.json().value("state", ""), "pending_approval");
  auto approved = client.Post("/v1/requests/" + id + "/approve", R"({"comment":"ok"})", Auth(kBob));
  ASSERT_EQ(approved.status, 200u) << approved.body;

  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    state = client.Get("/v1/requests/" + id, Auth(kAlice)).json().value("state", "");
    if (state == "ready" || state == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(state, "ready") << client.Get("/v1/requests/" + id, Auth(kAlice)).body;

  auto grant = client.Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice));
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const TunnelTarget target = ParseTunnelUrl(grant.json().value("url", ""));
  HttpClient tunnel(target.host, target.port, ClientTls{pki.ca.cert_file, "", ""});
  auto rows =
      tunnel.Post(target.prefix + "/query", json{{"sql", "SELECT SUM(amount) FROM orders"}}.dump(),
                  {{"Authorization", "Bearer " + grant.json().value("credential", "")},
                   {"Content-Type", "application/json"}});
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_DOUBLE_EQ(rows.json()["rows"][0][0].get<double>(), 127.75);

  // The row in PostgreSQL follows the request.
  auto stored = pg.Query("SELECT state FROM requests WHERE id = '" + id + "'", "airlock_e2e");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0][0].value_or(""), "ready");

  auto revoked =
      client.Post("/v1/requests/" + id + "/revoke", R"({"comment":"done"})", Auth(kAlice));
  ASSERT_EQ(revoked.status, 200u) << revoked.body;
  EXPECT_EQ(revoked.json().value("state", ""), "closed");
  stored = pg.Query("SELECT state, version FROM requests WHERE id = '" + id + "'", "airlock_e2e");
  EXPECT_EQ(stored.at(0)[0].value_or(""), "closed");
  EXPECT_GE(std::stoi(stored.at(0)[1].value_or("0")), 6);  // every transition saved
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state/state.db"));

  // A restarted kernel finds its requests in the database.
  kernel.Stop();
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient again("127.0.0.1", kernel.port());
  auto after = again.Get("/v1/requests/" + id, Auth(kAlice));
  ASSERT_EQ(after.status, 200u) << after.body;
  EXPECT_EQ(after.json().value("state", ""), "closed");
  kernel.Stop();

  EXPECT_EQ(kernel.log().find(kPassword), std::string::npos) << "the password reached the log";
  EXPECT_NE(kernel.log().find("postgres airlock_kernel@127.0.0.1"), std::string::npos)
      << kernel.log();

  // The audit chain lives in the database too (audit.backend follows the
  // state backend): no local file, and the API reads it from there.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state/audit.log"));
  auto records = pg.Query(
      "SELECT line FROM audit_records WHERE request_id = '" + id + "' ORDER BY seq", "airlock_e2e");
  ASSERT_GE(records.size(), 5u);
  EXPECT_NE(records.front()[0].value_or("").find("\"event\":\"request.submitted\""),
            std::string::npos);
  ASSERT_EQ(RunAirlockd({"audit", "verify", "--config", kernel.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("audit chain in postgres airlock_kernel@127.0.0.1"), std::string::npos) << out;
  EXPECT_NE(out.find("OK ("), std::string::npos) << out;
  EXPECT_EQ(out.find(kPassword), std::string::npos) << out;

  // Exported as the file backend's JSON lines, it verifies as a file.
  const std::string exported = dir.path() + "/export.log";
  ASSERT_EQ(RunAirlockd({"audit", "export", "--config", kernel.config_path(), "--output", exported},
                        &out),
            0)
      << out;
  EXPECT_TRUE(std::filesystem::exists(exported + ".head"));
  ASSERT_EQ(RunAirlockd({"audit", "verify", exported}, &out), 0) << out;
  // Never over an existing file.
  EXPECT_NE(RunAirlockd({"audit", "export", "--config", kernel.config_path(), "--output", exported},
                        &out),
            0);

  // A record changed in the database is found, by its seq.
  pg.Exec("CREATE TABLE saved_record AS SELECT * FROM audit_records WHERE seq = 2", "airlock_e2e");
  pg.Exec(
      "UPDATE audit_records SET line = regexp_replace(line, '\"ts\":\"[^\"]*\"', "
      "'\"ts\":\"2020-01-01T00:00:00.000000Z\"') WHERE seq = 2",
      "airlock_e2e");
  EXPECT_EQ(RunAirlockd({"audit", "verify", "--config", kernel.config_path()}, &out), 1) << out;
  EXPECT_NE(out.find("TAMPERED at line 2"), std::string::npos) << out;
  pg.Exec("UPDATE audit_records r SET line = s.line FROM saved_record s WHERE r.seq = s.seq",
          "airlock_e2e");
  EXPECT_EQ(RunAirlockd({"audit", "verify", "--config", kernel.config_path()}, &out), 0) << out;
}

// Two replicas on one database list each other in GET /v1/cluster (admins
// only); a replica that loses the database says so in /healthz and refuses
// work with 503, and serves again once the database is back, without a
// restart; a stopped replica turns stale.
// GET /v1/events on one replica shows what another replica did: the
// replicas relay their events through the shared database.
TEST(PostgresStateE2E, AWatcherOfOneReplicaSeesTransitionsMadeOnAnother) {
  constexpr const char* kEve = "alk_pg_eve_token_4";
  TempDir dir_a("airlock-pg-events-a-");
  TempDir dir_b("airlock-pg-events-b-");
  auto kernels =
      StartTwoReplicas(PgCluster::Shared(), "airlock_events", dir_a, dir_b, [](json& config) {
        config["identity"][0]["config"]["tokens"].push_back(TokenEntry(kEve, "eve", "analysts"));
      });
  ASSERT_FALSE(::testing::Test::HasFailure());
  KernelProcess& a = *kernels[0];
  KernelProcess& b = *kernels[1];

  // alice and eve watch replica A; everything happens on replica B.
  Watcher alice(a.port(), kAlice);
  Watcher eve(a.port(), kEve);
  ASSERT_EQ(alice.Status(), 200u) << alice.head();
  ASSERT_EQ(eve.Status(), 200u) << eve.head();
  const auto is_ready = [](const SseEvent& e) { return e.name == "ready"; };
  ASSERT_TRUE(alice.WaitFor(is_ready));
  ASSERT_TRUE(eve.WaitFor(is_ready));

  HttpClient on_b("127.0.0.1", b.port());
  auto created =
      on_b.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"relay"})", Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(on_b.Post("/v1/requests/" + id + "/approve", "", Auth(kBob)).status, 200u);

  const auto reached = [&](const std::string& state) {
    return [&, state](const SseEvent& e) {
      if (e.name != "request") return false;
      const json data = json::parse(e.data);
      return data.value("request_id", "") == id && data.value("state", "") == state &&
             data["request"].value("state", "") != "";
    };
  };
  EXPECT_TRUE(alice.WaitFor(reached("pending_approval"))) << alice.unparsed();
  EXPECT_TRUE(alice.WaitFor(reached("approved"))) << alice.unparsed();
  EXPECT_TRUE(alice.WaitFor(reached("ready"), std::chrono::seconds(30))) << alice.unparsed();
  // Relayed or not, a watcher sees only what it may.
  eve.Drain(std::chrono::milliseconds(500));
  for (const std::string& seen : eve.RequestIds()) EXPECT_NE(seen, id);
}

TEST(PostgresStateE2E, ReplicasSeeEachOtherAndHealthFollowsTheDatabase) {
  PgCluster& pg = PgCluster::Shared();
  TempDir dir_a("airlock-pg-replica-a-");
  TempDir dir_b("airlock-pg-replica-b-");
  auto kernels = StartTwoReplicas(pg, "airlock_replicas", dir_a, dir_b, [](json& config) {
    config["access"]["admin_groups"] = {"owners"};
    config["state"]["heartbeat_interval_ms"] = 200;
  });
  ASSERT_FALSE(::testing::Test::HasFailure());
  KernelProcess& a = *kernels[0];
  KernelProcess& b = *kernels[1];

  HttpClient client("127.0.0.1", a.port());
  EXPECT_EQ(client.Get("/v1/cluster", Auth(kAlice)).status, 403u);
  // A replica records the URL it serves at with its first heartbeat after
  // its server listens: within one interval of starting.
  const auto published = [&](const json& replicas) {
    for (const json& replica : replicas) {
      if (replica.value("api_url", "").empty()) return false;
    }
    return replicas.size() == 2;
  };
  auto cluster = client.Get("/v1/cluster", Auth(kBob));
  const auto publish_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cluster.status == 200 && !published(cluster.json()["replicas"]) &&
         std::chrono::steady_clock::now() < publish_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cluster = client.Get("/v1/cluster", Auth(kBob));
  }
  ASSERT_EQ(cluster.status, 200u) << cluster.body;
  const json view = cluster.json();
  EXPECT_EQ(view.value("heartbeat_interval_ms", 0), 200);
  EXPECT_NE(view.value("state_store", "").find("postgres airlock_kernel@127.0.0.1"),
            std::string::npos);
  ASSERT_EQ(view["replicas"].size(), 2u) << view.dump();
  std::set<std::string> urls;
  int selves = 0;
  for (const json& replica : view["replicas"]) {
    EXPECT_EQ(replica.value("status", ""), "live") << replica.dump();
    EXPECT_FALSE(replica.value("version", "").empty());
    urls.insert(replica.value("api_url", ""));
    if (replica.value("self", false)) {
      ++selves;
      EXPECT_EQ(replica.value("id", ""), view.value("replica", ""));
    }
  }
  EXPECT_EQ(selves, 1);
  EXPECT_EQ(urls, (std::set<std::string>{"http://127.0.0.1:" + std::to_string(a.port()),
                                         "http://127.0.0.1:" + std::to_string(b.port())}));
  EXPECT_EQ(client.Get("/healthz").status, 200u);

  // One audit chain: what one replica records, the other reads.
  HttpClient client_b("127.0.0.1", b.port());
  const json ask = {{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "replicas"}};
  auto on_b = client_b.Post("/v1/requests", ask.dump(), Auth(kAlice));
  ASSERT_EQ(on_b.status, 201u) << on_b.body;
  const std::string id_b = on_b.json().value("id", "");
  auto trail = client.Get("/v1/audit?request=" + id_b, Auth(kBob));
  ASSERT_EQ(trail.status, 200u) << trail.body;
  ASSERT_FALSE(trail.json()["records"].empty()) << trail.body;
  EXPECT_EQ(trail.json()["records"][0].value("event", ""), "request.submitted");

  // The database goes away: not ready, and no work is acknowledged.
  pg.StopServer();
  auto down = WaitForStatus(a.port(), "/healthz", 503, std::chrono::seconds(15));
  EXPECT_EQ(down.status, 503u) << down.body;
  // Whichever noticed first: the heartbeat or an audit append.
  const std::string reason = down.json().value("reason", "");
  EXPECT_TRUE(reason.starts_with("state store: ") || reason.starts_with("audit log unavailable"))
      << down.body;
  auto refused = client.Post("/v1/requests", ask.dump(), Auth(kAlice));
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_EQ(refused.body.find(kPassword), std::string::npos);

  // Back: ready again and serving, neither kernel restarted.
  pg.StartServer();
  auto up = WaitForStatus(a.port(), "/healthz", 200, std::chrono::seconds(15));
  EXPECT_EQ(up.status, 200u) << up.body;
  auto created = client.Post("/v1/requests", ask.dump(), Auth(kAlice));
  EXPECT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(WaitForStatus(b.port(), "/healthz", 200, std::chrono::seconds(15)).status, 200u);

  // A stopped replica stops beating and turns stale (3 intervals).
  b.Stop();
  std::string b_status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (b_status != "stale" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const json seen = client.Get("/v1/cluster", Auth(kBob)).json();
    for (const json& replica : seen["replicas"]) {
      if (!replica.value("self", true)) b_status = replica.value("status", "");
    }
  }
  EXPECT_EQ(b_status, "stale");
  a.Stop();
  EXPECT_EQ(a.log().find(kPassword), std::string::npos);

  // Both replicas' records, one chain, intact.
  std::string out;
  ASSERT_EQ(RunAirlockd({"audit", "verify", "--config", a.config_path()}, &out), 0) << out;
  EXPECT_EQ(pg.Query("SELECT count(*) FROM audit_records WHERE line LIKE "
                     "'%\"event\":\"kernel.started\"%'",
                     "airlock_replicas")
                .at(0)
                .at(0),
            "2");
}

}  // namespace
}  // namespace airlock::test
