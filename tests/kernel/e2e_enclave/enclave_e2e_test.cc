// Enclaves as they run in production: a real airlockd child process with the
// `process` isolator (each enclave a sandboxed airlock-enclave process in its
// own namespaces), real TCP sources on loopback, the HTTPS tunnel over TLS,
// and a deliberately misbehaving connector (chaos_connector.cc).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/greeting_server.h"
#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kAlice = "alk_enclave_alice_token";
constexpr const char* kBob = "alk_enclave_bob_token";

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  RAND_bytes(raw.data(), static_cast<int>(raw.size()));
  std::ostringstream out;
  for (unsigned char c : raw) out << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
  return out.str();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Teardown follows the recorded state change, so give it a moment.
bool NoEnclavesLeft(pid_t kernel) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!EnclaveChildren(kernel).empty()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool Alive(pid_t pid) {
  const std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  const size_t close = stat.rfind(')');
  return close != std::string::npos && stat[close + 2] != 'Z';
}

class EnclaveE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    canary_ = "canary-" + RandomHex(16);
    ::setenv("AIRLOCK_TEST_CANARY", canary_.c_str(), 1);
  }

  void TearDown() override {
    kernel_.reset();
    ::unsetenv("AIRLOCK_TEST_CANARY");
  }

  // Two CSV datasets, chaos datasets, and `extra` connectors/datasets.
  json Config(const std::vector<uint16_t>& approved_ports, const std::string& probe_object,
              int64_t memory_bytes = int64_t{1} << 30, int64_t retention_seconds = 86400) {
    const std::string dir = dir_.path();
    std::filesystem::create_directories(dir + "/data");
    std::ofstream(dir + "/data/customers.csv")
        << "id,name,country\n1,Ada,GB\n2,Grace,US\n3,Edsger,NL\n";
    std::ofstream(dir + "/data/orders.csv")
        << "order_id,customer_id,amount\n10,1,100.5\n11,1,20\n12,2,7.25\n13,3,1000\n";
    json egress = json::array();
    for (uint16_t port : approved_ports) egress.push_back("127.0.0.1:" + std::to_string(port));
    json policy = AnalystsPolicy({"*"});
    return {
        {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
        {"state_dir", dir + "/state"},
        {"identity", AliceAndBobIdentity(kAlice, kBob)},
        {"policy", RulesPolicyRef(policy)},
        {"isolator", ProcessIsolatorRef(dir + "/enclaves",
                                        {"pid_namespace", "network_namespace", "no_new_privs"})},
        {"tunnel", HttpsTunnelRef(pki_)},
        {"connectors",
         {{"files",
           {{"plugin", PluginPath("airlock_connector_files")},
            {"config", {{"root", dir + "/data"}}}}},
          {"chaos",
           {{"plugin", PluginPath("airlock_test_connector_chaos")},
            {"egress", egress},
            {"config", {{"secret", "env:AIRLOCK_TEST_CANARY"}}}}}}},
        {"datasets",
         {{{"name", "customers"},
           {"connector", "files"},
           {"object", "customers.csv"},
           {"key", {"id"}}},
          {{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}},
          {{"name", "ghost"}, {"connector", "files"}, {"object", "ghost.csv"}},
          {{"name", "crasher"}, {"connector", "chaos"}, {"object", "crash"}},
          {{"name", "probe"}, {"connector", "chaos"}, {"object", probe_object}},
          {{"name", "secretive"}, {"connector", "chaos"}, {"object", "secret"}},
          {{"name", "hog"}, {"connector", "chaos"}, {"object", "memory:512"}},
          {{"name", "big"}, {"connector", "chaos"}, {"object", "rows:2000000"}},
          {{"name", "peek"},
           {"connector", "chaos"},
           {"object", "peek:" + dir + "/data/customers.csv|" + dir + "/state|" + dir +
                          "/enclaves|/etc/shadow|" + PluginPath("airlock_test_connector_chaos")}},
          {{"name", "syscalls"}, {"connector", "chaos"}, {"object", "syscalls"}}}},
        {"limits",
         {{"enclave_memory_bytes", memory_bytes},
          {"job_results_retention_seconds", retention_seconds}}}};
  }

  void StartKernel(const json& config) {
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
  }

  json Get(const std::string& id) {
    return client_->Get("/v1/requests/" + id, Auth(kAlice)).json();
  }

  std::string WaitForState(const std::string& id, const std::set<std::string>& states,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = Clock::now() + timeout;
    std::string state;
    while (Clock::now() < deadline) {
      state = Get(id).value("state", "");
      if (states.count(state)) return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return state;
  }

  // alice asks for `datasets`, bob approves; returns the id.
  std::string Approved(const std::vector<std::string>& datasets, int64_t window = 600) {
    auto created = client_->Post(
        "/v1/requests",
        json{{"datasets", datasets}, {"window_seconds", window}, {"purpose", "test"}}.dump(),
        Auth(kAlice));
    EXPECT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    auto approved = client_->Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob));
    EXPECT_EQ(approved.status, 200u) << approved.body;
    return id;
  }

  std::string Ready(const std::vector<std::string>& datasets, int64_t window = 600) {
    const std::string id = Approved(datasets, window);
    EXPECT_EQ(WaitForState(id, {"ready", "failed"}), "ready") << Get(id).dump();
    return id;
  }

  using Tunnel = TunnelSession;

  Tunnel OpenTunnel(const std::string& id) {
    ClientResponse grant;
    Tunnel t = ConnectTunnel(*client_, id, Auth(kAlice), pki_.ca.cert_file, &grant);
    EXPECT_EQ(grant.status, 200u) << grant.body;
    return t;
  }

  ClientResponse Query(Tunnel& t, const std::string& sql) { return TunnelQuery(t, sql); }

  std::vector<json> AuditRecords(const std::string& id) {
    auto r = client_->Get("/v1/audit?request=" + id, Auth(kAlice));
    std::vector<json> out;
    for (const auto& rec : r.json().value("records", json::array())) out.push_back(rec);
    return out;
  }

  TempDir dir_{"airlock-enclave-e2e-"};
  TestPki pki_;
  std::string canary_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(EnclaveE2E, TwoCsvDatasetsGoThroughTheirWholeLifeInASandbox) {
  StartKernel(Config({}, "probe:1"));
  const std::string id = Ready({"customers", "orders"});
  json ready = Get(id);
  // Progress per dataset is on the request.
  EXPECT_EQ(ready["enclave"]["progress"]["orders"].value("rows", 0), 4) << ready.dump();
  EXPECT_EQ(ready["enclave"]["progress"]["customers"].value("state", ""), "done");
  const auto enclaves = EnclaveChildren(kernel_->pid());
  ASSERT_EQ(enclaves.size(), 1u) << "one sandboxed enclave process per ready request";

  Tunnel t = OpenTunnel(id);
  auto rows = Query(t,
                    "SELECT c.name, SUM(o.amount) FROM customers c JOIN orders o ON o.customer_id "
                    "= c.id GROUP BY c.id ORDER BY c.id");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  ASSERT_EQ(rows.json()["rows"].size(), 3u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][1][0], "Grace");
  // Sealed means read-only.
  EXPECT_NE(Query(t, "DELETE FROM orders").status, 200u);
  EXPECT_EQ(Query(t, "SELECT count(*) FROM orders").json()["rows"][0][0], 4);
  // The key declared for customers (a file reports none) orders its table.
  auto schema = Query(t, "SELECT sql FROM sqlite_schema WHERE name = 'customers'");
  ASSERT_EQ(schema.status, 200u) << schema.body;
  ASSERT_EQ(schema.json()["rows"].size(), 1u) << schema.body;
  EXPECT_NE(
      schema.json()["rows"][0][0].get<std::string>().find("PRIMARY KEY (\"id\")) WITHOUT ROWID"),
      std::string::npos)
      << schema.body;

  ASSERT_EQ(client_->Post("/v1/requests/" + id + "/revoke", "{}", Auth(kAlice)).status, 200u);
  EXPECT_FALSE(Alive(enclaves[0])) << "revoke destroys the enclave process";
  std::set<std::string> events;
  for (const json& rec : AuditRecords(id)) events.insert(rec.value("event", ""));
  for (const char* e : {"enclave.pull_started", "enclave.pull_done", "enclave.credentials_cleared",
                        "enclave.sealed", "tunnel.query", "enclave.destroyed"}) {
    EXPECT_TRUE(events.count(e)) << e << " missing from " << json(events).dump();
  }
}

TEST_F(EnclaveE2E, CrashingConnectorFailsOnlyItsRequest) {
  StartKernel(Config({}, "probe:1"));
  const std::string healthy = Ready({"customers"});
  const std::string crashing = Approved({"crasher"});
  EXPECT_EQ(WaitForState(crashing, {"failed", "ready"}), "failed");
  EXPECT_FALSE(Get(crashing).value("reason", "").empty());
  // The kernel and the other enclave carry on.
  EXPECT_EQ(client_->Get("/healthz").status, 200u);
  EXPECT_EQ(Get(healthy).value("state", ""), "ready");
  Tunnel t = OpenTunnel(healthy);
  auto rows = Query(t, "SELECT count(*) FROM customers");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], 3);
  EXPECT_EQ(EnclaveChildren(kernel_->pid()).size(), 1u);
}

TEST_F(EnclaveE2E, EgressReachesOnlyApprovedEndpoints) {
  GreetingServer approved("hello-approved");
  GreetingServer other("hello-other");
  const std::string ports = std::to_string(approved.port()) + "," + std::to_string(other.port());
  StartKernel(Config({approved.port()}, "probe:" + ports));
  const std::string id = Ready({"probe"});
  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT port, outcome, greeting FROM probe ORDER BY port = " +
                           std::to_string(other.port()));
  ASSERT_EQ(rows.status, 200u) << rows.body;
  json r = rows.json()["rows"];
  ASSERT_EQ(r.size(), 2u) << rows.body;
  EXPECT_EQ(r[0][1], "connected") << rows.body;
  EXPECT_EQ(r[0][2], "hello-approved");
  EXPECT_EQ(r[1][1], "refused") << "a non-approved port is unreachable from the enclave";
  EXPECT_EQ(other.accepted(), 0);
  EXPECT_EQ(approved.accepted(), 1);
  bool audited = false;
  for (const json& rec : AuditRecords(id)) {
    if (rec.value("event", "") == "enclave.egress" &&
        rec.value("endpoint", "") == "127.0.0.1:" + std::to_string(approved.port()) &&
        rec.value("outcome", "") == "connected") {
      audited = true;
    }
  }
  EXPECT_TRUE(audited);
}

// The enclave's private root holds only what its datasets need (the files
// connector's root and the plugins), and the seccomp allow-list refuses what
// an enclave must never do.
TEST_F(EnclaveE2E, EnclaveReadsOnlyItsReadPathsAndCannotEscape) {
  StartKernel(Config({}, "probe:1"));
  const json plugins = client_->Get("/v1/plugins", Auth(kAlice)).json();
  const std::string described = plugins.dump();
  EXPECT_NE(described.find("\"seccomp\":\"allow-list\""), std::string::npos) << described;
  if (described.find("\"pivot_root\":true") == std::string::npos) {
    GTEST_SKIP() << "this host allows no private root: " << described;
  }
  const std::string id = Ready({"customers", "peek", "syscalls"});
  Tunnel t = OpenTunnel(id);
  auto peeked = Query(t, "SELECT what, outcome FROM peek");
  ASSERT_EQ(peeked.status, 200u) << peeked.body;
  std::map<std::string, std::string> outcome;
  const json peeked_body = peeked.json();
  for (const json& row : peeked_body["rows"]) outcome[row[0]] = row[1];
  const std::string dir = dir_.path();
  EXPECT_EQ(outcome[dir + "/data/customers.csv"], "readable") << peeked.body;
  EXPECT_EQ(outcome[PluginPath("airlock_test_connector_chaos")], "readable");
  EXPECT_EQ(outcome[dir + "/state"], "ENOENT") << "the kernel's state directory is not there";
  EXPECT_EQ(outcome[dir + "/enclaves"], "ENOENT") << "nor the isolator's records";
  EXPECT_EQ(outcome["/etc/shadow"], "ENOENT");

  auto called = Query(t, "SELECT what, outcome FROM syscalls");
  ASSERT_EQ(called.status, 200u) << called.body;
  std::map<std::string, std::string> calls;
  const json called_body = called.json();
  for (const json& row : called_body["rows"]) calls[row[0]] = row[1];
  EXPECT_EQ(calls["ptrace"], "EPERM") << called.body;
  EXPECT_EQ(calls["netlink"], "EAFNOSUPPORT");
  EXPECT_EQ(calls["unshare"], "EPERM");
  EXPECT_EQ(calls["mount"], "EPERM");
}

TEST_F(EnclaveE2E, OneFailingDatasetLeavesNothingQueryable) {
  StartKernel(Config({}, "probe:1"));
  const std::string id = Approved({"customers", "ghost"});
  EXPECT_EQ(WaitForState(id, {"failed", "ready"}), "failed");
  json failed = Get(id);
  EXPECT_NE(failed.value("reason", "").find("ghost"), std::string::npos) << failed.dump();
  EXPECT_FALSE(failed.contains("tunnel") && failed["tunnel"].contains("url")) << failed.dump();
  EXPECT_NE(client_->Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice)).status, 200u);
  EXPECT_TRUE(NoEnclavesLeft(kernel_->pid()));
}

TEST_F(EnclaveE2E, SecretCanaryNeverLeavesTheEnclave) {
  StartKernel(Config({}, "probe:1"));
  const std::string id = Ready({"secretive"});
  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT secret_length FROM secretive");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], static_cast<int64_t>(canary_.size()))
      << "the connector resolved the secret inside the enclave";
  // Staging is gone after sealing: only the dataset's table remains.
  auto tables = t.client->Get(t.prefix + "/tables", {{"Authorization", "Bearer " + t.credential}});
  ASSERT_EQ(tables.status, 200u);
  EXPECT_EQ(tables.body.find("_airlock_"), std::string::npos) << tables.body;
  EXPECT_NE(Query(t, "SELECT name FROM sqlite_temp_master").status, 500u);

  std::string api;
  api += client_->Get("/v1/requests/" + id, Auth(kAlice)).body;
  api += client_->Get("/v1/audit?request=" + id, Auth(kAlice)).body;
  api += client_->Get("/v1/requests", Auth(kAlice)).body;
  api += client_->Get("/v1/plugins", Auth(kAlice)).body;
  ASSERT_EQ(client_->Post("/v1/requests/" + id + "/revoke", "{}", Auth(kAlice)).status, 200u);
  kernel_->Stop();
  EXPECT_EQ(api.find(canary_), std::string::npos) << "API responses";
  EXPECT_EQ(kernel_->log().find(canary_), std::string::npos) << "kernel log";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_.path() + "/state")) {
    if (!entry.is_regular_file()) continue;
    EXPECT_EQ(Slurp(entry.path()).find(canary_), std::string::npos) << entry.path();
  }
}

TEST_F(EnclaveE2E, RevokeStopsARunningQueryWithinOneSecond) {
  StartKernel(Config({}, "probe:1"));
  const std::string id = Ready({"orders"});
  Tunnel t = OpenTunnel(id);
  std::atomic<bool> finished{false};
  Clock::time_point finished_at;
  unsigned status = 0;
  std::thread runner([&] {
    // Runs until the query timeout unless something stops it.
    auto r = Query(t,
                   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                   "SELECT count(*) FROM c");
    status = r.status;
    finished_at = Clock::now();
    finished = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_FALSE(finished.load()) << "the query should still be running";
  const auto revoked_at = Clock::now();
  ASSERT_EQ(client_->Post("/v1/requests/" + id + "/revoke", "{}", Auth(kAlice)).status, 200u);
  runner.join();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(finished_at - revoked_at);
  EXPECT_LT(took.count(), 1000) << "revoke took " << took.count() << " ms to stop the query";
  EXPECT_NE(status, 200u);
  EXPECT_EQ(Get(id).value("state", ""), "closed");
  EXPECT_TRUE(NoEnclavesLeft(kernel_->pid()));
}

TEST_F(EnclaveE2E, WindowExpiryClosesTheRequestOnTime) {
  StartKernel(Config({}, "probe:1"));
  const std::string id = Ready({"orders"}, /*window=*/3);
  json ready = Get(id);
  const auto closed_by = Clock::now() + std::chrono::seconds(6);
  EXPECT_EQ(WaitForState(id, {"closed"}, std::chrono::seconds(8)), "closed");
  EXPECT_LT(Clock::now(), closed_by);
  EXPECT_NE(Get(id).value("reason", "").find("window"), std::string::npos);
  EXPECT_TRUE(NoEnclavesLeft(kernel_->pid()));
}

TEST_F(EnclaveE2E, KernelCrashLeavesNoOrphanEnclave) {
  StartKernel(Config({}, "probe:1"));
  const std::string id = Ready({"orders"});
  const auto enclaves = EnclaveChildren(kernel_->pid());
  ASSERT_EQ(enclaves.size(), 1u);
  kernel_->Kill();  // SIGKILL: no cleanup runs in the kernel
  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Alive(enclaves[0]) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(Alive(enclaves[0])) << "the orphan enclave is gone";
  json after = Get(id);
  EXPECT_EQ(after.value("state", ""), "closed") << after.dump();
  const auto records = AuditRecords(id);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back().value("event", ""), "request.closed");
}

TEST_F(EnclaveE2E, EnclaveOverItsMemoryLimitFailsWithAClearReason) {
  // 2M rows of (int64, text) need far more than 48 MiB of SQLite pages.
  StartKernel(Config({}, "probe:1", /*memory_bytes=*/int64_t{48} << 20));
  const std::string id = Approved({"big"});
  EXPECT_EQ(WaitForState(id, {"failed", "ready"}, std::chrono::seconds(60)), "failed");
  const std::string reason = Get(id).value("reason", "");
  EXPECT_NE(reason.find("memory"), std::string::npos) << reason;
  EXPECT_EQ(client_->Get("/healthz").status, 200u);
  EXPECT_TRUE(NoEnclavesLeft(kernel_->pid()));
}

TEST_F(EnclaveE2E, JobModeRunsQueriesAndKeepsResultsUntilRetentionEnds) {
  StartKernel(Config({}, "probe:1", int64_t{1} << 30, /*retention_seconds=*/4));
  const json body = {
      {"datasets", {"customers", "orders"}},
      {"purpose", "monthly report"},
      {"mode", "job"},
      {"queries",
       {"SELECT c.name, SUM(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = "
        "c.id GROUP BY c.id ORDER BY c.id",
        "SELECT no_such_column FROM orders"}}};
  json no_queries = body;
  no_queries.erase("queries");
  EXPECT_EQ(client_->Post("/v1/requests", no_queries.dump(), Auth(kAlice)).status, 400u);
  json unknown_mode = body;
  unknown_mode["mode"] = "batch";
  EXPECT_EQ(client_->Post("/v1/requests", unknown_mode.dump(), Auth(kAlice)).status, 400u);

  auto created = client_->Post("/v1/requests", body.dump(), Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(client_->Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
  EXPECT_EQ(WaitForState(id, {"closed", "failed"}), "closed") << Get(id).dump();
  // A job opens no tunnel: there is no credential to collect.
  EXPECT_NE(client_->Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice)).status, 200u);
  EXPECT_TRUE(NoEnclavesLeft(kernel_->pid())) << "the enclave closes once the job is done";

  auto listing = client_->Get("/v1/requests/" + id + "/results", Auth(kAlice));
  ASSERT_EQ(listing.status, 200u) << listing.body;
  const json results = listing.json();
  EXPECT_EQ(results.value("state", ""), "finished") << listing.body;
  ASSERT_EQ(results["results"].size(), 2u);
  EXPECT_EQ(results["results"][0].value("outcome", ""), "ok");
  EXPECT_EQ(results["results"][0].value("rows", 0), 3);
  EXPECT_NE(results["results"][1].value("outcome", ""), "ok");
  EXPECT_FALSE(results["results"][1].contains("href"));

  // Only the requester reads results; a failed query has none.
  EXPECT_NE(client_->Get("/v1/requests/" + id + "/results/0", Auth(kBob)).status, 200u);
  EXPECT_EQ(client_->Get("/v1/requests/" + id + "/results/1", Auth(kAlice)).status, 409u);
  EXPECT_EQ(client_->Get("/v1/requests/" + id + "/results/7", Auth(kAlice)).status, 404u);
  EXPECT_EQ(client_->Post("/v1/requests/" + id + "/results/0", "", Auth(kAlice)).status, 405u);

  auto download = client_->Get(results["results"][0].value("href", ""), Auth(kAlice));
  ASSERT_EQ(download.status, 200u) << download.body;
  std::istringstream lines(download.body);
  std::string line;
  std::vector<json> parsed;
  while (std::getline(lines, line)) parsed.push_back(json::parse(line));
  ASSERT_EQ(parsed.size(), 4u) << download.body;
  EXPECT_EQ(parsed[0]["columns"][0].value("name", ""), "name");
  EXPECT_EQ(parsed[1][0], "Ada");
  EXPECT_DOUBLE_EQ(parsed[1][1].get<double>(), 120.5);
  EXPECT_EQ(parsed[3][0], "Edsger");

  bool audited = false;
  for (const json& rec : AuditRecords(id)) {
    if (rec.value("event", "") == "job.result_downloaded") audited = true;
  }
  EXPECT_TRUE(audited);

  // After the retention deadline the results are gone, from the API and disk.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  unsigned status = 200;
  while (status == 200 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    status = client_->Get("/v1/requests/" + id + "/results/0", Auth(kAlice)).status;
  }
  EXPECT_EQ(status, 410u);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/state/results/" + id));
}

}  // namespace
}  // namespace airlock::test
