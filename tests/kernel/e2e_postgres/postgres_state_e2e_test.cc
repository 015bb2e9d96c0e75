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
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_pg_alice_token_1";
constexpr const char* kBob = "alk_pg_bob_token_2";
constexpr const char* kPassword = "kernel-Pw-3d9f0b7e";

json Config(const std::string& dir, const TestPki& pki, const PgCluster& pg) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/orders.csv")
      << "order_id,customer_id,amount\n10,1,100.5\n11,1,20\n12,2,7.25\n";
  json policy = {{"version", 1},
                 {"rules",
                  {{{"name", "analysts"},
                    {"effect", "allow"},
                    {"subjects", {{"groups", {"analysts"}}}},
                    {"datasets", {"orders"}},
                    {"approval", {{"groups", {"owners"}}, {"count", 1}}}}}}};
  return {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
      {"state_dir", dir + "/state"},
      {"state",
       {{"backend", "postgres"},
        {"dsn_secret", "file:" + dir + "/state.dsn"},
        {"tls", {{"mode", "verify-full"}, {"ca_file", pg.ca_file()}}}}},
      {"identity", AliceAndBobIdentity(kAlice, kBob)},
      {"policy", RulesPolicyRef(policy)},
      {"isolator", {{"name", "inprocess"}, {"plugin", PluginPath("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", PluginPath("airlock_connector_files")},
          {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets", {{{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}}}},
      {"access", {{"reviewer_groups", {"owners"}}}}};
}

Headers Auth(const char* token) {
  return {{"Authorization", std::string("Bearer ") + token}, {"Content-Type", "application/json"}};
}

TEST(PostgresStateE2E, ARequestLivesItsWholeLifeInPostgres) {
  PgCluster& pg = PgCluster::Shared();
  pg.Exec(std::string("CREATE ROLE airlock_kernel LOGIN PASSWORD '") + kPassword + "'");
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
  EXPECT_NE(out.find("migrated from version 0 to 1"), std::string::npos) << out;
  EXPECT_EQ(out.find(kPassword), std::string::npos) << out;
  ASSERT_EQ(RunAirlockd({"state", "migrate", "--config", kernel.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("already at version 1"), std::string::npos) << out;

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
}

}  // namespace
}  // namespace airlock::test
