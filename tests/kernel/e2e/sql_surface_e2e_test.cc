// The enclave's SQL function allow-list (kernel/enclave/sql_surface.h) as
// users meet it, on every way a query reaches an enclave: a real airlockd,
// a request made ready through the API, and then the HTTPS tunnel (over
// TLS), the pgwire tunnel (the real psql binary over TLS) and a job's
// queries. Functions that return or take raw pointers (fts3_tokenizer),
// load native code (load_extension) or describe the build
// (sqlite_compileoption_get) are refused with a message naming them; the
// functions analysts use keep working. The runtime itself is covered by
// tests/kernel/enclave/sql_surface_test.cc.
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/support/http_client.h"
#include "tests/support/shell_command.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kAlice = "alk_surface_alice_token";
constexpr const char* kBob = "alk_surface_bob_token";

// What each refused query must be refused as.
struct Refused {
  std::string sql;
  std::string message;
};

const std::vector<Refused>& RefusedQueries() {
  static const std::vector<Refused> refused = {
      {"SELECT hex(fts3_tokenizer('simple'))",
       "function fts3_tokenizer is not allowed in an enclave query"},
      {"SELECT fts3_tokenizer('mine', x'4141414141414141')",
       "function fts3_tokenizer is not allowed in an enclave query"},
      {"SELECT load_extension('/tmp/airlock-evil.so')",
       "function load_extension is not allowed in an enclave query"},
      {"SELECT sqlite_compileoption_get(0)",
       "function sqlite_compileoption_get is not allowed in an enclave query"},
  };
  return refused;
}

// Text, aggregates, window, JSON and dates in one query; one row per
// customer.
constexpr const char* kAllowedQuery =
    "SELECT upper(name), json_extract(json_object('n', id), '$.n'), "
    "row_number() OVER (ORDER BY id), date('2026-01-31', '+1 day') FROM customers ORDER BY id";

using CommandResult = airlock::test::ShellResult;

// Runs a shell command line; its stderr is read with its stdout.
CommandResult RunCommand(const std::string& command) {
  return airlock::test::RunShell(command + " 2>&1");
}

// A kernel with one CSV dataset, alice (analyst) and bob (approver), the
// in-process isolator and the tunnel `transport`.
class SqlSurfaceE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void StartKernel(const std::string& transport) {
    pki_ = GenerateTestPki(dir_.path());
    const std::string dir = dir_.path();
    std::filesystem::create_directories(dir + "/data");
    std::ofstream(dir + "/data/customers.csv") << "id,name\n1,Ada\n2,Grace\n3,Edsger\n";
    json policy = AnalystsPolicy({"*"});
    json tunnel = HttpsTunnelRef(pki_);
    if (transport == "pgwire") {
      tunnel["name"] = "pgwire";
      tunnel["plugin"] = PluginPath("airlock_tunnel_pgwire");
    }
    const json config = {
        {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
        {"state_dir", dir + "/state"},
        {"identity", AliceAndBobIdentity(kAlice, kBob)},
        {"policy", RulesPolicyRef(policy)},
        {"isolator", {{"name", "inprocess"}, {"plugin", PluginPath("airlock_isolator_inprocess")}}},
        {"tunnel", tunnel},
        {"connectors",
         {{"files",
           {{"plugin", PluginPath("airlock_connector_files")},
            {"config", {{"root", dir + "/data"}}}}}}},
        {"datasets",
         {{{"name", "customers"}, {"connector", "files"}, {"object", "customers.csv"}}}}};
    kernel_ = std::make_unique<KernelProcess>(dir, config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
  }

  json Get(const std::string& id) {
    return client_->Get("/v1/requests/" + id, Auth(kAlice)).json();
  }

  std::string WaitForState(const std::string& id, const std::set<std::string>& states) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::string state;
    while (Clock::now() < deadline) {
      state = Get(id).value("state", "");
      if (states.count(state)) return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return state;
  }

  // alice asks with `body`, bob approves; returns the id.
  std::string Approved(const json& body) {
    auto created = client_->Post("/v1/requests", body.dump(), Auth(kAlice));
    EXPECT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    auto approved = client_->Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob));
    EXPECT_EQ(approved.status, 200u) << approved.body;
    return id;
  }

  std::string Ready() {
    const std::string id = Approved(
        {{"datasets", {"customers"}}, {"window_seconds", 600}, {"purpose", "surface test"}});
    EXPECT_EQ(WaitForState(id, {"ready", "failed"}), "ready") << Get(id).dump();
    return id;
  }

  TempDir dir_{"airlock-sql-surface-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> client_;
};

TEST_P(SqlSurfaceE2E, RefusedFunctionsAreRefusedByNameThroughTheTunnel) {
  const std::string transport = GetParam();
  StartKernel(transport);
  const std::string id = Ready();

  if (transport == "https") {
    ClientResponse grant;
    TunnelSession t = ConnectTunnel(*client_, id, Auth(kAlice), pki_.ca.cert_file, &grant);
    ASSERT_EQ(grant.status, 200u) << grant.body;
    for (const Refused& r : RefusedQueries()) {
      auto refused = TunnelQuery(t, r.sql);
      EXPECT_EQ(refused.status, 403u) << r.sql << " -> " << refused.body;
      EXPECT_NE(refused.body.find(r.message), std::string::npos) << r.sql << " -> " << refused.body;
    }
    auto allowed = TunnelQuery(t, kAllowedQuery);
    ASSERT_EQ(allowed.status, 200u) << allowed.body;
    const json rows = allowed.json()["rows"];
    ASSERT_EQ(rows.size(), 3u) << allowed.body;
    EXPECT_EQ(rows[1], json({"GRACE", 2, 2, "2026-02-01"})) << allowed.body;
    return;
  }

  // pgwire: the real psql, over TLS, with the grant's password in its
  // environment only.
  auto grant = client_->Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice));
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const json g = grant.json();
  ASSERT_EQ(g.value("transport", ""), "pgwire") << grant.body;
  const std::string psql = "PGPASSWORD='" + g.value("credential", "") +
                           "' PGCONNECT_TIMEOUT=10 PGGSSENCMODE=disable psql -X -A -t -F '|' " +
                           "-v ON_ERROR_STOP=1 -v VERBOSITY=verbose '" + g.value("url", "") +
                           "' -c ";
  for (const Refused& r : RefusedQueries()) {
    const CommandResult refused = RunCommand(psql + "\"" + r.sql + "\"");
    EXPECT_NE(refused.exit_code, 0) << r.sql << " -> " << refused.output;
    EXPECT_NE(refused.output.find(r.message), std::string::npos)
        << r.sql << " -> " << refused.output;
    // insufficient_privilege, not a read-only violation.
    EXPECT_NE(refused.output.find("42501"), std::string::npos) << refused.output;
  }
  const CommandResult allowed = RunCommand(psql + "\"" + kAllowedQuery + "\"");
  ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_EQ(allowed.output, "ADA|1|1|2026-02-01\nGRACE|2|2|2026-02-01\nEDSGER|3|3|2026-02-01\n");
}

INSTANTIATE_TEST_SUITE_P(Transports, SqlSurfaceE2E, ::testing::Values("https", "pgwire"),
                         [](const auto& info) { return info.param; });

using SqlSurfaceJobE2E = SqlSurfaceE2E;

TEST_F(SqlSurfaceJobE2E, RefusedFunctionsFailTheirJobQueryByName) {
  StartKernel("https");
  json queries = json::array();
  for (const Refused& r : RefusedQueries()) queries.push_back(r.sql);
  queries.push_back(kAllowedQuery);
  const std::string id = Approved({{"datasets", {"customers"}},
                                   {"purpose", "surface test"},
                                   {"mode", "job"},
                                   {"queries", queries}});
  ASSERT_EQ(WaitForState(id, {"closed", "failed"}), "closed") << Get(id).dump();
  auto listing = client_->Get("/v1/requests/" + id + "/results", Auth(kAlice));
  ASSERT_EQ(listing.status, 200u) << listing.body;
  const json results = listing.json()["results"];
  ASSERT_EQ(results.size(), RefusedQueries().size() + 1) << listing.body;
  for (size_t i = 0; i < RefusedQueries().size(); ++i) {
    EXPECT_EQ(results[i].value("outcome", ""), "permission_denied") << results[i].dump();
    EXPECT_EQ(results[i].value("error", ""), RefusedQueries()[i].message) << results[i].dump();
    EXPECT_FALSE(results[i].contains("href"));
  }
  const json& last = results[RefusedQueries().size()];
  EXPECT_EQ(last.value("outcome", ""), "ok") << last.dump();
  EXPECT_EQ(last.value("rows", 0), 3) << last.dump();
}

}  // namespace
}  // namespace airlock::test
