// One request, three kinds of source, one sandboxed enclave: a PostgreSQL 15
// table (a real throwaway cluster, TLS, password as an env: secret), a MongoDB
// collection (through the real libmongoc driver, against the wire-protocol
// test double of tests/support/mongodb: no MongoDB server is packaged here)
// and a CSV file, pulled through the enclave's egress forwarder under the
// `process` isolator and joined in one SQL query through the HTTPS tunnel.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/mongodb/mongo_test_server.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using testing::mongodb::MongoTestServer;

constexpr const char* kAlice = "alk_cross_alice_token";
constexpr const char* kBob = "alk_cross_bob_token";
constexpr const char* kPgPassword = "pg-reader-secret-7f3a";

TEST(CrossSource, PostgresMongoAndCsvJoinInOneEnclave) {
  TempDir dir("airlock-cross-");
  const TestPki pki = GenerateTestPki(dir.path());

  auto pg = PgCluster::Start();
  pg->Exec(std::string("CREATE ROLE reader LOGIN PASSWORD '") + kPgPassword +
           "';"
           "CREATE TABLE customers (id int8 PRIMARY KEY, name text, country text, email text);"
           "INSERT INTO customers VALUES (1, 'Ada', 'GB', 'ada@example.com'),"
           " (2, 'Grace', 'US', 'grace@example.com'), (3, 'Edsger', 'NL', NULL);"
           "GRANT SELECT ON customers TO reader;");
  ::setenv("AIRLOCK_TEST_PG_PASSWORD", kPgPassword, 1);
  // The cluster's own directory belongs to the postgres user; an enclave (in
  // a user namespace that maps only the kernel's uid) cannot read it.
  const std::string ca_file = dir.path() + "/pg-ca.crt";
  std::filesystem::copy_file(pg->ca_file(), ca_file);

  auto mongo = MongoTestServer::Start();
  ASSERT_NE(mongo, nullptr);
  ASSERT_TRUE(mongo->InsertJson(
      "shop", "orders",
      {R"({"order_id": 10, "customer_id": {"$numberLong": "1"}, "amount": 100.5})",
       R"({"order_id": 11, "customer_id": {"$numberLong": "1"}, "amount": 20.0})",
       R"({"order_id": 12, "customer_id": {"$numberLong": "2"}, "amount": 7.25})",
       R"({"order_id": 13, "customer_id": {"$numberLong": "3"}, "amount": 1000.0})"}));

  std::filesystem::create_directories(dir.path() + "/data");
  std::ofstream(dir.path() + "/data/regions.csv")
      << "country,region\nGB,Europe\nNL,Europe\nUS,Americas\n";

  const std::string pg_endpoint = "127.0.0.1:" + std::to_string(pg->port());
  const std::string mongo_endpoint = "127.0.0.1:" + std::to_string(mongo->port());
  json policy = {{"version", 1},
                 {"rules",
                  {{{"name", "analysts"},
                    {"effect", "allow"},
                    {"subjects", {{"groups", {"analysts"}}}},
                    {"datasets", {"*"}},
                    {"approval", {{"groups", {"owners"}}, {"count", 1}}},
                    {"obligations", {{"customers", {{"masks", {{"email", "redact"}}}}}}}}}}};
  json config = {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
      {"state_dir", dir.path() + "/state"},
      {"identity", AliceAndBobIdentity(kAlice, kBob)},
      {"policy", RulesPolicyRef(policy)},
      {"isolator",
       ProcessIsolatorRef(dir.path() + "/enclaves", {"network_namespace", "pid_namespace"})},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"pg", PostgresConnectorRef(pg->port(), ca_file, "env:AIRLOCK_TEST_PG_PASSWORD",
                                    {{{"name", "customers"}, {"table", "public.customers"}}})},
        {"mongo", MongoConnectorRef(mongo->uri(), mongo->port(), "shop",
                                    {{{"name", "orders"}, {"collection", "orders"}}})},
        {"files",
         {{"plugin", PluginPath("airlock_connector_files")},
          {"config", {{"root", dir.path() + "/data"}}}}}}},
      {"datasets",
       {{{"name", "customers"}, {"connector", "pg"}, {"object", "customers"}},
        {{"name", "orders"}, {"connector", "mongo"}, {"object", "orders"}},
        {{"name", "regions"}, {"connector", "files"}, {"object", "regions.csv"}}}}};

  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());

  auto created = api.Post(
      "/v1/requests",
      json{{"datasets", {"customers", "orders", "regions"}}, {"purpose", "revenue by region"}}
          .dump(),
      Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(api.Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
  std::string state;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    state = api.Get("/v1/requests/" + id, Auth(kAlice)).json().value("state", "");
    if (state == "ready" || state == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(state, "ready") << api.Get("/v1/requests/" + id, Auth(kAlice)).body << kernel.log();

  auto grant = api.Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice));
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const TunnelTarget target = ParseTunnelUrl(grant.json().value("url", ""));
  HttpClient tunnel(target.host, target.port, ClientTls{pki.ca.cert_file, "", ""});
  const std::string sql =
      "SELECT r.region, COUNT(DISTINCT c.id) AS customers, SUM(o.amount) AS revenue, "
      "MIN(c.email) AS any_email "
      "FROM customers c JOIN orders o ON o.customer_id = c.id "
      "JOIN regions r ON r.country = c.country GROUP BY r.region ORDER BY r.region";
  auto rows = tunnel.Post(target.prefix + "/query", json{{"sql", sql}}.dump(),
                          {{"Authorization", "Bearer " + grant.json().value("credential", "")},
                           {"Content-Type", "application/json"}});
  ASSERT_EQ(rows.status, 200u) << rows.body;
  const json result = rows.json()["rows"];
  ASSERT_EQ(result.size(), 2u) << rows.body;
  EXPECT_EQ(result[0][0], "Americas");
  EXPECT_EQ(result[0][1], 1);
  EXPECT_DOUBLE_EQ(result[0][2].get<double>(), 7.25);
  EXPECT_EQ(result[1][0], "Europe");
  EXPECT_EQ(result[1][1], 2);
  EXPECT_DOUBLE_EQ(result[1][2].get<double>(), 1120.5);
  EXPECT_EQ(result[1][3], "***") << "masked at the source, as the policy obliges";
  EXPECT_EQ(rows.body.find("ada@example.com"), std::string::npos);

  // Both network sources were reached through audited, kernel-made connections.
  std::set<std::string> reached;
  const json audit = api.Get("/v1/audit?request=" + id, Auth(kAlice)).json();
  for (const json& rec : audit["records"]) {
    if (rec.value("event", "") == "enclave.egress" && rec.value("outcome", "") == "connected") {
      reached.insert(rec.value("endpoint", ""));
    }
  }
  EXPECT_EQ(reached, (std::set<std::string>{pg_endpoint, mongo_endpoint}));
  // The source password never reached the kernel's records.
  kernel.Stop();
  EXPECT_EQ(kernel.log().find(kPgPassword), std::string::npos);
  ::unsetenv("AIRLOCK_TEST_PG_PASSWORD");
}

}  // namespace
}  // namespace airlock::test
