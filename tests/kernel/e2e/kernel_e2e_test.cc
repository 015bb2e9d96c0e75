// End-to-end tests of the kernel as users meet it: a real airlockd process,
// real plugins loaded through the C ABI, real HTTP (and TLS) on loopback, the
// in-process development isolator, the HTTPS tunnel, and the audit verifier.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_test_alice_token_1";
constexpr const char* kBob = "alk_test_bob_token_2";
constexpr const char* kCarol = "alk_test_carol_token_3";
constexpr const char* kDave = "alk_test_dave_token_4";

// A complete kernel configuration for tests: two CSV datasets, tokens for
// alice (analyst), bob (approver), carol (admin), dave (contractor).
json TestConfig(const std::string& dir, const TestPki& pki, bool kernel_tls) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/customers.csv")
      << "id,name,email,country\n1,Ada,ada@example.com,GB\n2,Grace,grace@example.com,US\n"
         "3,Edsger,edsger@example.com,NL\n";
  std::ofstream(dir + "/data/orders.csv")
      << "order_id,customer_id,amount\n10,1,100.5\n11,1,20\n12,2,7.25\n13,3,1000\n";
  json policy = {{"version", 1},
                 {"rules",
                  {{{"name", "analysts"},
                    {"effect", "allow"},
                    {"subjects", {{"groups", {"analysts"}}}},
                    {"datasets", {"customers", "orders", "ghost"}},
                    {"max_window_seconds", 3600},
                    {"approval", {{"groups", {"owners"}}, {"count", 1}, {"timeout_seconds", 3600}}},
                    {"obligations", {{"customers", {{"masks", {{"email", "redact"}}}}}}}},
                   {{"name", "no-contractors"},
                    {"effect", "deny"},
                    {"subjects", {{"groups", {"contractors"}}}},
                    {"datasets", {"*"}}}}}};
  json config = {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}, {"body_limit_bytes", 4096}}},
      {"state_dir", dir + "/state"},
      {"identity",
       {{{"name", "tokens"},
         {"plugin", PluginPath("airlock_identity_static_tokens")},
         {"config",
          {{"tokens",
            {TokenEntry(kAlice, "alice", "analysts"), TokenEntry(kBob, "bob", "owners"),
             TokenEntry(kCarol, "carol", "admins"), TokenEntry(kDave, "dave", "contractors")}}}}}}},
      {"policy",
       {{"name", "rules"}, {"plugin", PluginPath("airlock_policy_rules")}, {"config", policy}}},
      {"isolator", {{"name", "inprocess"}, {"plugin", PluginPath("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", PluginPath("airlock_connector_files")},
          {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets",
       {{{"name", "customers"},
         {"connector", "files"},
         {"object", "customers.csv"},
         {"tags", {"pii"}}},
        {{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}},
        // Catalogued, but its file is gone: ingestion fails.
        {{"name", "ghost"}, {"connector", "files"}, {"object", "ghost.csv"}}}},
      {"access", {{"admin_groups", {"admins"}}, {"reviewer_groups", {"owners"}}}}};
  if (kernel_tls) {
    config["server"]["tls"] = {{"certificate_file", pki.server.cert_file},
                               {"private_key_file", pki.server.key_file}};
  }
  return config;
}

class KernelE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    json config = TestConfig(dir_.path(), pki_, TlsKernel());
    Adjust(config);
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    Connect();
  }

  virtual bool TlsKernel() const { return false; }
  // Changes the suite's configuration before the kernel starts.
  virtual void Adjust(json& /*config*/) {}

  void Connect() {
    std::optional<ClientTls> tls;
    if (TlsKernel()) tls = ClientTls{pki_.ca.cert_file, "", ""};
    client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port(), tls);
  }

  json Create(const char* token, const json& body, unsigned expect = 201) {
    auto r = client_->Post("/v1/requests", body.dump(), Auth(token));
    EXPECT_EQ(r.status, expect) << r.body;
    return r.json();
  }

  ClientResponse Action(const char* token, const std::string& id, const std::string& action,
                        const std::string& body = "") {
    return client_->Post("/v1/requests/" + id + "/" + action, body, Auth(token));
  }

  json Get(const char* token, const std::string& id) {
    return client_->Get("/v1/requests/" + id, Auth(token)).json();
  }

  std::string WaitForState(const std::string& id, const std::set<std::string>& states,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string state;
    while (std::chrono::steady_clock::now() < deadline) {
      state = Get(kAlice, id).value("state", "");
      if (states.count(state)) return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return state;
  }

  // alice asks, bob approves, the request becomes ready.
  std::string ReadyRequest(int64_t window_seconds = 600) {
    json created = Create(kAlice, {{"datasets", {"customers", "orders"}},
                                   {"window_seconds", window_seconds},
                                   {"purpose", "test"}});
    const std::string id = created.value("id", "");
    EXPECT_EQ(created.value("state", ""), "pending_approval") << created.dump();
    auto approved = Action(kBob, id, "approve", R"({"comment":"fine"})");
    EXPECT_EQ(approved.status, 200u) << approved.body;
    EXPECT_EQ(WaitForState(id, {"ready", "failed"}), "ready") << Get(kAlice, id).dump();
    return id;
  }

  std::vector<std::string> AuditEvents(const std::string& id) {
    auto r = client_->Get("/v1/audit?request=" + id, Auth(kAlice));
    std::vector<std::string> events;
    for (const auto& rec : r.json().value("records", json::array())) {
      events.push_back(rec.value("event", ""));
    }
    return events;
  }

  // Teardown is audited after the transition that caused it, so a test that
  // has seen the state waits for the record instead of reading once.
  bool WaitForAuditEvent(const std::string& id, const std::string& event) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto events = AuditEvents(id);
      if (std::find(events.begin(), events.end(), event) != events.end()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  TempDir dir_{"airlock-e2e-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(KernelE2E, RequestGoesThroughItsWholeLife) {
  const std::string id = ReadyRequest();
  json ready = Get(kAlice, id);
  EXPECT_EQ(ready["tunnel"].value("transport", ""), "https");
  EXPECT_FALSE(ready.dump().find("credential\":\"") != std::string::npos &&
               ready["tunnel"].contains("credential"));

  // The credential goes to the requester, once.
  auto other = Action(kBob, id, "credentials");
  EXPECT_EQ(other.status, 403u) << other.body;
  auto grant = Action(kAlice, id, "credentials");
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const std::string credential = grant.json().value("credential", "");
  const std::string url = grant.json().value("url", "");
  ASSERT_FALSE(credential.empty());
  EXPECT_EQ(Action(kAlice, id, "credentials").status, 410u);

  // A join across the two datasets through the tunnel, over TLS.
  TunnelTarget target = ParseTunnelUrl(url);
  ASSERT_NE(target.port, 0) << url;
  HttpClient tunnel(target.host, target.port, ClientTls{pki_.ca.cert_file, "", ""});
  const std::string sql =
      "SELECT c.name, c.email, SUM(o.amount) AS total FROM customers c JOIN orders o "
      "ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id";
  auto rows = tunnel.Post(
      target.prefix + "/query", json{{"sql", sql}}.dump(),
      {{"Authorization", "Bearer " + credential}, {"Content-Type", "application/json"}});
  ASSERT_EQ(rows.status, 200u) << rows.body;
  json result = rows.json();
  ASSERT_EQ(result["rows"].size(), 3u) << rows.body;
  EXPECT_EQ(result["rows"][0][0], "Ada");
  EXPECT_EQ(result["rows"][0][1], "***");  // masked by policy before it entered the enclave
  EXPECT_DOUBLE_EQ(result["rows"][0][2].get<double>(), 120.5);
  EXPECT_EQ(result["rows"][2][0], "Edsger");
  EXPECT_DOUBLE_EQ(result["rows"][2][2].get<double>(), 1000.0);
  EXPECT_EQ(rows.body.find("ada@example.com"), std::string::npos);

  // A wrong credential is refused.
  auto wrong = tunnel.Post(target.prefix + "/query", json{{"sql", "SELECT 1"}}.dump(),
                           {{"Authorization", "Bearer not-the-credential"}});
  EXPECT_EQ(wrong.status, 401u);

  // Revoke closes the request and the tunnel at once.
  auto revoked = Action(kAlice, id, "revoke", R"({"comment":"done"})");
  ASSERT_EQ(revoked.status, 200u) << revoked.body;
  EXPECT_EQ(revoked.json().value("state", ""), "closed");
  HttpClient after(target.host, target.port, ClientTls{pki_.ca.cert_file, "", ""});
  auto refused = after.Post(target.prefix + "/query", json{{"sql", "SELECT 1"}}.dump(),
                            {{"Authorization", "Bearer " + credential}});
  EXPECT_TRUE(refused.status == 410u || refused.status == 404u) << refused.status;

  // Every decision point is in the audit trail, in order.
  EXPECT_TRUE(WaitForAuditEvent(id, "enclave.destroyed"));
  const auto events = AuditEvents(id);
  const std::vector<std::string> expected = {
      "request.submitted",    "request.evaluated",   "request.pending_approval", "request.approved",
      "request.provisioning", "enclave.provisioned", "request.ingesting",        "enclave.sealed",
      "request.ready",        "tunnel.opened",       "tunnel.credential_issued", "tunnel.query",
      "request.closed",       "tunnel.closed",       "enclave.destroyed"};
  size_t at = 0;
  for (const auto& e : events) {
    if (at < expected.size() && e == expected[at]) ++at;
  }
  EXPECT_EQ(at, expected.size()) << "missing or out of order: " << expected[at]
                                 << "\nall: " << json(events).dump();

  // The whole log verifies.
  kernel_->Stop();
  std::string out;
  EXPECT_EQ(RunAirlockd({"audit", "verify", dir_.path() + "/state/audit.log"}, &out), 0) << out;
}

TEST_F(KernelE2E, AuthenticationIsRequired) {
  EXPECT_EQ(client_->Get("/v1/catalog").status, 401u);
  EXPECT_EQ(client_->Get("/v1/catalog", {{"Authorization", "Bearer nope"}}).status, 401u);
  EXPECT_EQ(client_->Get("/v1/catalog", {{"Authorization", "Basic YWxpY2U6eA=="}}).status, 401u);
  // Refusals are audited, without the presented credential.
  {
    std::ifstream in(dir_.path() + "/state/audit.log");
    std::stringstream text;
    text << in.rdbuf();
    size_t refusals = 0;
    for (size_t at = 0; (at = text.str().find("\"auth.refused\"", at)) != std::string::npos; ++at) {
      ++refusals;
    }
    EXPECT_EQ(refusals, 3u);
    EXPECT_EQ(text.str().find("nope"), std::string::npos);
    EXPECT_EQ(text.str().find("YWxpY2U6eA"), std::string::npos);
  }
  auto ok = client_->Get("/v1/catalog", Auth(kAlice));
  ASSERT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.json()["datasets"].size(), 3u);
  // Health, metrics and the API description need no credential.
  EXPECT_EQ(client_->Get("/healthz").status, 200u);
  auto metrics = client_->Get("/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_NE(metrics.body.find("airlock_http_requests_total"), std::string::npos);
  auto openapi = client_->Get("/v1/openapi.json");
  ASSERT_EQ(openapi.status, 200u);
  EXPECT_EQ(openapi.json().value("openapi", ""), "3.0.3");
  EXPECT_TRUE(openapi.json()["paths"].contains("/v1/requests"));
  auto plugins = client_->Get("/v1/plugins", Auth(kAlice)).json();
  ASSERT_TRUE(plugins.contains("plugins"));
  bool saw_dev_isolator = false;
  for (const auto& p : plugins["plugins"]) {
    if (p.value("role", "") == "isolator") {
      saw_dev_isolator = p["isolation"].value("development_only", false);
    }
  }
  EXPECT_TRUE(saw_dev_isolator) << plugins.dump();
}

TEST_F(KernelE2E, ApprovalRules) {
  json created = Create(kAlice, {{"datasets", {"orders"}}});
  const std::string id = created.value("id", "");
  // The requester cannot approve; someone outside the approver groups cannot either.
  auto self = Action(kAlice, id, "approve");
  EXPECT_EQ(self.status, 403u) << self.body;
  EXPECT_NE(self.body.find("self-approval"), std::string::npos);
  auto outsider = Action(kCarol, id, "approve");
  EXPECT_EQ(outsider.status, 403u) << outsider.body;
  EXPECT_EQ(Get(kAlice, id).value("state", ""), "pending_approval");
  // Deny is final; a later approve conflicts.
  auto denied = Action(kBob, id, "deny", R"({"comment":"not this quarter"})");
  ASSERT_EQ(denied.status, 200u) << denied.body;
  EXPECT_EQ(denied.json().value("state", ""), "denied");
  EXPECT_EQ(Action(kBob, id, "approve").status, 409u);
  EXPECT_EQ(Action(kAlice, id, "revoke").status, 409u);
  EXPECT_EQ(Action(kAlice, id, "credentials").status, 409u);
}

TEST_F(KernelE2E, DenyRuleRefusesAtOnce) {
  json created = Create(kDave, {{"datasets", {"orders"}}});
  EXPECT_EQ(created.value("state", ""), "denied");
  EXPECT_NE(created["decision"].value("rule", "").find("no-contractors"), std::string::npos)
      << created.dump();
}

TEST_F(KernelE2E, ForbiddenTransitionsConflict) {
  const std::string id = ReadyRequest();
  EXPECT_EQ(Action(kBob, id, "approve").status, 409u);
  EXPECT_EQ(Action(kBob, id, "deny").status, 409u);
  ASSERT_EQ(Action(kAlice, id, "revoke").status, 200u);
  EXPECT_EQ(Action(kAlice, id, "revoke").status, 409u);
  EXPECT_EQ(Action(kBob, id, "approve").status, 409u);
}

TEST_F(KernelE2E, BadInputGetsClearErrors) {
  auto post = [&](const std::string& body) {
    return client_->Post("/v1/requests", body, Auth(kAlice));
  };
  auto malformed = post("{\"datasets\": [");
  EXPECT_EQ(malformed.status, 400u);
  EXPECT_EQ(malformed.json().value("error", ""), "invalid_argument");
  EXPECT_EQ(post(R"({"datasets": "orders"})").status, 400u);
  EXPECT_EQ(post(R"({"datasets": ["orders"], "window_seconds": "long"})").status, 400u);
  EXPECT_EQ(post(R"({"datasets": ["orders"], "window_seconds": 0})").status, 400u);
  EXPECT_EQ(post(R"({"datasets": []})").status, 400u);
  EXPECT_EQ(post(R"({"datasets": ["orders"], "colour": "red"})").status, 400u);
  EXPECT_EQ(post("[1,2,3]").status, 400u);
  auto unknown = post(R"({"datasets": ["orders", "salaries"]})");
  EXPECT_EQ(unknown.status, 422u);
  EXPECT_NE(unknown.body.find("salaries"), std::string::npos);
  auto oversized = post(std::string(8192, ' ') + R"({"datasets": ["orders"]})");
  EXPECT_EQ(oversized.status, 413u);
  EXPECT_EQ(client_->Get("/v1/requests/req_doesnotexist", Auth(kAlice)).status, 404u);
  EXPECT_EQ(client_->Get("/v1/requests?state=sideways", Auth(kAlice)).status, 400u);
  EXPECT_EQ(client_->Get("/v1/requests?limit=0", Auth(kAlice)).status, 400u);
  EXPECT_EQ(client_->Get("/v1/nothing", Auth(kAlice)).status, 404u);
  EXPECT_EQ(client_->Request("DELETE", "/v1/requests", "", Auth(kAlice)).status, 405u);
  // Nothing half-done: no request was created by any of the above.
  auto list = client_->Get("/v1/requests?mine=true", Auth(kAlice)).json();
  EXPECT_EQ(list["requests"].size(), 0u) << list.dump();
}

TEST_F(KernelE2E, ListingFiltersAndPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Create(kAlice, {{"datasets", {"orders"}}})["id"]);
  Create(kDave, {{"datasets", {"orders"}}});
  // alice sees only her own; bob (reviewer) sees all six.
  EXPECT_EQ(client_->Get("/v1/requests", Auth(kAlice)).json()["requests"].size(), 5u);
  EXPECT_EQ(client_->Get("/v1/requests", Auth(kBob)).json()["requests"].size(), 6u);
  EXPECT_EQ(client_->Get("/v1/requests?state=denied", Auth(kBob)).json()["requests"].size(), 1u);
  std::set<std::string> seen;
  std::string token;
  for (int page = 0; page < 5; ++page) {
    std::string target = "/v1/requests?mine=true&limit=2";
    if (!token.empty()) target += "&page_token=" + token;
    json body = client_->Get(target, Auth(kAlice)).json();
    for (const auto& r : body["requests"]) EXPECT_TRUE(seen.insert(r["id"]).second);
    token = body.value("next_page_token", "");
    if (token.empty()) break;
  }
  EXPECT_EQ(seen, std::set<std::string>(ids.begin(), ids.end()));
  // Someone else's request is invisible to alice.
  const std::string daves =
      client_->Get("/v1/requests?state=denied", Auth(kBob)).json()["requests"][0]["id"];
  EXPECT_EQ(client_->Get("/v1/requests/" + daves, Auth(kAlice)).status, 404u);
}

TEST_F(KernelE2E, FailedIngestionExposesNothing) {
  json created = Create(kAlice, {{"datasets", {"orders", "ghost"}}});
  const std::string id = created.value("id", "");
  ASSERT_EQ(Action(kBob, id, "approve").status, 200u);
  EXPECT_EQ(WaitForState(id, {"ready", "failed"}), "failed");
  json failed = Get(kAlice, id);
  EXPECT_NE(failed.value("reason", "").find("ghost"), std::string::npos) << failed.dump();
  EXPECT_TRUE(failed["tunnel"].empty()) << failed.dump();
  EXPECT_EQ(Action(kAlice, id, "credentials").status, 409u);
  EXPECT_TRUE(WaitForAuditEvent(id, "enclave.destroyed"));
  const auto events = AuditEvents(id);
  EXPECT_NE(std::find(events.begin(), events.end(), "request.failed"), events.end());
  EXPECT_EQ(std::find(events.begin(), events.end(), "tunnel.opened"), events.end());
}

TEST_F(KernelE2E, WindowEndClosesTheRequest) {
  const std::string id = ReadyRequest(/*window_seconds=*/2);
  EXPECT_EQ(WaitForState(id, {"closed"}, std::chrono::seconds(10)), "closed");
  json closed = Get(kAlice, id);
  EXPECT_NE(closed.value("reason", "").find("window"), std::string::npos) << closed.dump();
}

TEST_F(KernelE2E, HttpsTunnelSaysWhetherTheWindowEndedOrAccessWasRevoked) {
  const std::string ending = ReadyRequest(/*window_seconds=*/5);
  ClientResponse grant;
  TunnelSession ended = ConnectTunnel(*client_, ending, Auth(kAlice), pki_.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const std::string revoking = ReadyRequest();
  TunnelSession revoked =
      ConnectTunnel(*client_, revoking, Auth(kAlice), pki_.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;
  EXPECT_EQ(TunnelQuery(revoked, "SELECT 1").status, 200u);

  ASSERT_EQ(Action(kAlice, revoking, "revoke").status, 200u);
  ASSERT_TRUE(WaitForAuditEvent(revoking, "tunnel.closed"));
  auto res = TunnelQuery(revoked, "SELECT 1");
  EXPECT_EQ(res.status, 410u) << res.body;
  EXPECT_EQ(res.json().value("error", ""), "revoked") << res.body;

  // The window ends by itself: the request says so, and so does the tunnel.
  EXPECT_EQ(WaitForState(ending, {"closed"}, std::chrono::seconds(30)), "closed");
  ASSERT_TRUE(WaitForAuditEvent(ending, "tunnel.closed"));
  EXPECT_NE(Get(kAlice, ending).value("reason", "").find("window ended"), std::string::npos);
  res = TunnelQuery(ended, "SELECT 1");
  EXPECT_EQ(res.status, 410u) << res.body;
  EXPECT_EQ(res.json().value("error", ""), "window_ended") << res.body;
  EXPECT_EQ(res.body.find("revoked"), std::string::npos) << res.body;
}

// alice's 5-second window is extended by bob's approval: the same
// credential keeps working past the old end, until the new one.
TEST_F(KernelE2E, AnApprovedExtensionKeepsTheTunnelOpenPastTheOldWindowEnd) {
  const std::string id = ReadyRequest(/*window_seconds=*/5);
  const int64_t old_deadline = Get(kAlice, id).value("deadline_us", int64_t{0});
  ClientResponse grant;
  TunnelSession session = ConnectTunnel(*client_, id, Auth(kAlice), pki_.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;

  // Bad asks change nothing.
  EXPECT_EQ(Action(kAlice, id, "extend", R"({"window_seconds":0})").status, 400u);
  EXPECT_EQ(Action(kAlice, id, "extend", R"({"window_seconds":"60"})").status, 400u);
  EXPECT_EQ(Action(kAlice, id, "extend", R"({"window_seconds":60,"until":1})").status, 400u);
  EXPECT_EQ(Action(kAlice, id, "extend", "").status, 400u);
  EXPECT_EQ(Action(kBob, id, "extend", R"({"window_seconds":60})").status, 403u);

  // The analysts' rule needs an owner's approval: the extension waits.
  auto asked = Action(kAlice, id, "extend", R"({"window_seconds":25,"purpose":"one more join"})");
  ASSERT_EQ(asked.status, 200u) << asked.body;
  json waiting = asked.json();
  EXPECT_EQ(waiting.value("state", ""), "ready");
  EXPECT_EQ(waiting.value("deadline_us", int64_t{0}), old_deadline);
  ASSERT_TRUE(waiting["request"].contains("extension")) << asked.body;
  EXPECT_EQ(waiting["request"]["extension"].value("added_seconds", 0), 25) << asked.body;
  EXPECT_EQ(Action(kAlice, id, "extend", R"({"window_seconds":5})").status, 409u);
  EXPECT_EQ(Action(kAlice, id, "approve").status, 403u);  // not her own
  EXPECT_EQ(Action(kCarol, id, "approve").status, 403u);  // an admin, not an owner

  auto approved = Action(kBob, id, "approve", R"({"comment":"ok"})");
  ASSERT_EQ(approved.status, 200u) << approved.body;
  json extended = approved.json();
  EXPECT_FALSE(extended["request"].contains("extension")) << approved.body;
  EXPECT_EQ(extended.value("deadline_us", int64_t{0}), old_deadline + 25 * 1000000);
  EXPECT_EQ(extended["request"].value("extended_seconds", 0), 25);
  EXPECT_EQ(extended["request"].value("window_seconds", 0), 30);

  // Past the old end the same credential still works.
  while (std::chrono::system_clock::now().time_since_epoch() <
         std::chrono::microseconds(old_deadline + 1500000)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto res = TunnelQuery(session, "SELECT COUNT(*) FROM orders");
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(Get(kAlice, id).value("state", ""), "ready");

  // A second extension, denied: the request stays ready as it was.
  ASSERT_EQ(Action(kAlice, id, "extend", R"({"window_seconds":60})").status, 200u);
  auto denied = Action(kBob, id, "deny", R"({"comment":"enough"})");
  ASSERT_EQ(denied.status, 200u) << denied.body;
  EXPECT_EQ(denied.json().value("state", ""), "ready");
  EXPECT_FALSE(denied.json()["request"].contains("extension")) << denied.body;
  EXPECT_EQ(denied.json().value("deadline_us", int64_t{0}), old_deadline + 25 * 1000000);

  const auto events = AuditEvents(id);
  for (const char* event :
       {"request.extension_requested", "request.extended", "request.extension_denied"}) {
    EXPECT_NE(std::find(events.begin(), events.end(), event), events.end()) << event;
  }
  ASSERT_EQ(Action(kAlice, id, "revoke").status, 200u);
  EXPECT_EQ(Action(kAlice, id, "extend", R"({"window_seconds":60})").status, 409u);
}

// The policy caps the longer window as it caps a new ask, and refuses what
// it would refuse.
TEST_F(KernelE2E, AnExtensionIsCappedByThePolicysWindowAndRefusedWhenTheWindowIsFull) {
  const std::string id = ReadyRequest(/*window_seconds=*/600);
  auto asked = Action(kAlice, id, "extend", R"({"window_seconds":86400})");
  ASSERT_EQ(asked.status, 200u) << asked.body;
  // analysts: max_window_seconds 3600.
  EXPECT_EQ(asked.json()["request"]["extension"].value("added_seconds", 0), 3000) << asked.body;
  ASSERT_EQ(Action(kBob, id, "approve").status, 200u);
  EXPECT_EQ(Get(kAlice, id)["request"].value("window_seconds", 0), 3600);
  auto full = Action(kAlice, id, "extend", R"({"window_seconds":60})");
  EXPECT_EQ(full.status, 403u) << full.body;
  EXPECT_NE(full.body.find("at most 3600 s"), std::string::npos) << full.body;
  EXPECT_TRUE(WaitForAuditEvent(id, "request.extension_denied"));
}

// An approver's queue: what waits for their decision, oldest first, and
// nothing of their own or already decided by them.
TEST_F(KernelE2E, TheApproverQueueHoldsWhatWaitsForTheirDecision) {
  const auto queue = [&](const char* token) {
    auto r = client_->Get("/v1/requests?awaiting=me", Auth(token));
    EXPECT_EQ(r.status, 200u) << r.body;
    std::vector<std::string> ids;
    for (const auto& item : r.json().value("requests", json::array())) {
      ids.push_back(item.value("id", ""));
    }
    return ids;
  };
  const std::string ready = ReadyRequest();
  const std::string first = Create(kAlice, {{"datasets", {"orders"}}})["id"];
  const std::string second = Create(kAlice, {{"datasets", {"customers"}}})["id"];
  EXPECT_EQ(queue(kBob), (std::vector<std::string>{first, second}));
  EXPECT_TRUE(queue(kAlice).empty());  // her own
  EXPECT_TRUE(queue(kCarol).empty());  // an admin, not an approver
  ASSERT_EQ(Action(kBob, first, "deny").status, 200u);
  ASSERT_EQ(Action(kAlice, ready, "extend", R"({"window_seconds":60})").status, 200u);
  EXPECT_EQ(queue(kBob), (std::vector<std::string>{second, ready}));
  EXPECT_EQ(client_->Get("/v1/requests?awaiting=you", Auth(kBob)).status, 400u);
  EXPECT_EQ(client_->Get("/v1/requests?awaiting=me&state=ready", Auth(kBob)).status, 400u);
}

TEST_F(KernelE2E, NullOptionalFieldsAreRefusedWithTheirName) {
  for (const char* key : {"window_seconds", "purpose", "mode", "queries"}) {
    json body = {{"datasets", {"orders"}}};
    body[key] = nullptr;
    auto r = client_->Post("/v1/requests", body.dump(), Auth(kAlice));
    EXPECT_EQ(r.status, 400u) << key << ": " << r.body;
    EXPECT_NE(r.body.find(std::string("request.") + key + " must not be null"), std::string::npos)
        << r.body;
  }
  // Absent still means the default.
  auto r = client_->Post("/v1/requests", json{{"datasets", {"orders"}}}.dump(), Auth(kAlice));
  EXPECT_EQ(r.status, 201u) << r.body;
}

// The same lifecycle served through the PostgreSQL wire protocol tunnel.
class KernelE2EPgwire : public KernelE2E {
 protected:
  void Adjust(json& config) override { config["tunnel"] = PgwireTunnelRef(pki_); }
};

TEST_F(KernelE2EPgwire, PsqlIsToldTheWindowEndedNotThatAccessWasRevoked) {
  const std::string ending = ReadyRequest(/*window_seconds=*/5);
  auto grant = Action(kAlice, ending, "credentials");
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const std::string revoking = ReadyRequest();
  auto revoked_grant = Action(kAlice, revoking, "credentials");
  ASSERT_EQ(revoked_grant.status, 200u) << revoked_grant.body;
  auto [code, out] = Psql(revoked_grant.json(), "SELECT count(*) FROM orders");
  EXPECT_EQ(code, 0) << out;

  ASSERT_EQ(Action(kAlice, revoking, "revoke").status, 200u);
  ASSERT_TRUE(WaitForAuditEvent(revoking, "tunnel.closed"));
  std::tie(code, out) = Psql(revoked_grant.json(), "SELECT 1");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("has been revoked"), std::string::npos) << out;

  EXPECT_EQ(WaitForState(ending, {"closed"}, std::chrono::seconds(30)), "closed");
  ASSERT_TRUE(WaitForAuditEvent(ending, "tunnel.closed"));
  std::tie(code, out) = Psql(grant.json(), "SELECT 1");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("access window for request \"" + ending + "\" has ended"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("revoked"), std::string::npos) << out;
}

TEST_F(KernelE2E, RestartKeepsPendingAndClosesLostEnclaves) {
  const std::string pending =
      Create(kAlice, {{"datasets", {"orders"}}, {"purpose", "later"}})["id"];
  const std::string ready = ReadyRequest();
  kernel_->Kill();  // a crash, not a clean stop
  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  Connect();
  EXPECT_EQ(Get(kAlice, pending).value("state", ""), "pending_approval");
  json after = Get(kAlice, ready);
  EXPECT_EQ(after.value("state", ""), "closed") << after.dump();
  EXPECT_NE(after.value("reason", "").find("restart"), std::string::npos);
  const auto events = AuditEvents(ready);
  EXPECT_EQ(events.back(), "request.closed") << json(events).dump();
  // The pending request still works after the restart.
  ASSERT_EQ(Action(kBob, pending, "approve").status, 200u);
  EXPECT_EQ(WaitForState(pending, {"ready", "failed"}), "ready");
}

// A scheduled start: approved before it, the request waits (no enclave),
// its window runs from not_before, and a kernel killed meanwhile starts it
// on time after its restart.
TEST_F(KernelE2E, AScheduledRequestStartsItsWindowAtNotBefore) {
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const int64_t start = now_s + 6;
  // RFC 3339 with an offset: the same instant as `start`.
  char text[64];
  const time_t shifted = static_cast<time_t>(start + 3600);
  struct tm tm {};
  gmtime_r(&shifted, &tm);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S+01:00", &tm);
  json created = Create(kAlice, {{"datasets", {"orders"}},
                                 {"window_seconds", 600},
                                 {"purpose", "month end"},
                                 {"not_before", text}});
  const std::string id = created.value("id", "");
  EXPECT_EQ(created["request"]["not_before"], start) << created.dump();
  ASSERT_EQ(Action(kBob, id, "approve", R"({"comment":"for the month end"})").status, 200u);
  json waiting = Get(kAlice, id);
  EXPECT_EQ(waiting.value("state", ""), "approved") << waiting.dump();
  EXPECT_EQ(waiting.value("deadline_us", int64_t{0}), (start + 600) * 1000000);

  kernel_->Kill();
  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  Connect();
  EXPECT_EQ(Get(kAlice, id).value("state", ""), "approved");  // still early
  EXPECT_EQ(WaitForState(id, {"ready", "failed", "closed"}, std::chrono::seconds(30)), "ready")
      << Get(kAlice, id).dump() << kernel_->log();
  const auto ready_s = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  EXPECT_GE(ready_s, start);  // not a moment before its start
  EXPECT_EQ(Get(kAlice, id).value("deadline_us", int64_t{0}), (start + 600) * 1000000);
}

TEST_F(KernelE2E, ScheduledStartsOutOfBoundsAreRefused) {
  const json base = {{"datasets", {"orders"}}, {"purpose", "later"}};
  const auto refused = [&](const json& not_before) {
    json body = base;
    body["not_before"] = not_before;
    return Create(kAlice, body, 400).dump();
  };
  EXPECT_NE(refused("tomorrow").find("RFC 3339"), std::string::npos);
  EXPECT_NE(refused("2026-12-06T09:30:00").find("RFC 3339"), std::string::npos);  // no zone
  EXPECT_NE(refused(-5).find("RFC 3339"), std::string::npos);
  EXPECT_NE(refused("2001-01-01T00:00:00Z").find("in the past"), std::string::npos);
  EXPECT_NE(refused("2999-01-01T00:00:00Z").find("max_schedule_ahead_seconds"), std::string::npos);
}

// The analysts' rule requires a purpose of at least 20 characters.
class KernelE2EPurposeRequired : public KernelE2E {
  void Adjust(json& config) override {
    config["policy"]["config"]["rules"][0]["purpose_min_length"] = 20;
  }
};

TEST_F(KernelE2EPurposeRequired, AnAskWithoutEnoughReasonIsRefusedAndNothingIsKept) {
  const json base = {{"datasets", {"orders"}}, {"window_seconds", 600}};
  json brief = base;
  brief["purpose"] = "test";
  const std::string refused = Create(kAlice, brief, 400).dump();
  EXPECT_NE(refused.find("at least 20 characters; this one has 4"), std::string::npos) << refused;
  EXPECT_NE(refused.find("analysts"), std::string::npos) << refused;
  json padded = base;
  padded["purpose"] = "   short, padded        ";  // blanks around it do not count
  EXPECT_NE(Create(kAlice, padded, 400).dump().find("this one has 13"), std::string::npos);
  // Characters, not bytes: 19 two-byte letters are still too short.
  json accented = base;
  std::string letters;
  for (int i = 0; i < 19; ++i) letters += "\u00e9";
  accented["purpose"] = letters;
  EXPECT_NE(Create(kAlice, accented, 400).dump().find("this one has 19"), std::string::npos);
  // Nothing of the refused asks was kept.
  EXPECT_EQ(client_->Get("/v1/requests", Auth(kAlice)).json()["requests"].size(), 0u);

  json justified = base;
  justified["purpose"] = "Quarterly fraud review f\u00fcr Q3 orders";
  const json created = Create(kAlice, justified);
  EXPECT_EQ(created.value("state", ""), "pending_approval") << created.dump();
  EXPECT_EQ(created["decision"].value("purpose_min_length", 0), 20) << created.dump();
  // A deny is a deny whatever the purpose says: it is recorded as denied.
  json contractor = base;
  contractor["purpose"] = "x";
  EXPECT_EQ(Create(kDave, contractor).value("state", ""), "denied");
}

// The catalog lists each dataset's columns; the policy keeps orders'
// customer_id back from analysts.
class KernelE2EColumns : public KernelE2E {
  void Adjust(json& config) override {
    auto columns = [](std::initializer_list<const char*> names) {
      json list = json::array();
      for (const char* name : names) list.push_back({{"name", name}, {"type", "string"}});
      return list;
    };
    config["datasets"][0]["columns"] = columns({"id", "name", "email", "country"});
    config["datasets"][1]["columns"] = columns({"order_id", "customer_id", "amount"});
    config["policy"]["config"]["rules"][0]["obligations"]["orders"] = {
        {"columns", {"order_id", "amount"}}};
  }

 protected:
  // The grant of ready request `id`, and a query through its tunnel.
  json Query(const std::string& id, const std::string& sql) {
    if (grants_.count(id) == 0) {
      auto grant = Action(kAlice, id, "credentials");
      EXPECT_EQ(grant.status, 200u) << grant.body;
      grants_[id] = grant.json();
    }
    const json& grant = grants_[id];
    TunnelTarget target = ParseTunnelUrl(grant.value("url", ""));
    HttpClient tunnel(target.host, target.port, ClientTls{pki_.ca.cert_file, "", ""});
    auto rows = tunnel.Post(target.prefix + "/query", json{{"sql", sql}}.dump(),
                            {{"Authorization", "Bearer " + grant.value("credential", "")},
                             {"Content-Type", "application/json"}});
    EXPECT_EQ(rows.status, 200u) << rows.body;
    return rows.json();
  }

  static std::vector<std::string> ColumnNames(const json& result) {
    std::vector<std::string> names;
    for (const auto& c : result.value("columns", json::array())) names.push_back(c["name"]);
    return names;
  }

  std::map<std::string, json> grants_;
};

TEST_F(KernelE2EColumns, AnAskForSomeColumnsPullsOnlyThose) {
  const json created = Create(kAlice, {{"datasets", {"customers", "orders"}},
                                       {"columns", {{"customers", {"name", "email"}}}},
                                       {"window_seconds", 600},
                                       {"purpose", "names only"}});
  const std::string id = created.value("id", "");
  EXPECT_EQ(created["request"]["columns"], json({{"customers", {"name", "email"}}}));
  ASSERT_EQ(Action(kBob, id, "approve").status, 200u);
  ASSERT_EQ(WaitForState(id, {"ready", "failed"}), "ready") << Get(kAlice, id).dump();

  // Only the columns asked for entered the enclave, the policy's mask still
  // applied; the dataset asked for whole has what the policy allows.
  const json customers = Query(id, "SELECT * FROM customers ORDER BY name");
  EXPECT_EQ(ColumnNames(customers), (std::vector<std::string>{"name", "email"}));
  ASSERT_EQ(customers["rows"].size(), 3u) << customers.dump();
  EXPECT_EQ(customers["rows"][0], json({"Ada", "***"}));
  EXPECT_EQ(ColumnNames(Query(id, "SELECT * FROM orders")),
            (std::vector<std::string>{"order_id", "amount"}));
  // What was asked is audited with the ask.
  const auto trail = client_->Get("/v1/audit?request=" + id, Auth(kAlice)).json();
  EXPECT_EQ(trail["records"][0]["columns"], json({{"customers", {"name", "email"}}}))
      << trail.dump();
}

TEST_F(KernelE2EColumns, ColumnsTheCatalogLacksOrThePolicyWithholdsAreRefusedAndNothingIsKept) {
  auto refused = [&](const json& columns) {
    return Create(kAlice,
                  {{"datasets", {"customers", "orders"}}, {"columns", columns}, {"purpose", "x"}},
                  400)
        .value("message", "");
  };
  EXPECT_NE(refused({{"customers", {"name", "salary"}}}).find("has no column 'salary'"),
            std::string::npos);
  EXPECT_NE(refused({{"customers", {"name", "name"}}}).find("repeats"), std::string::npos);
  EXPECT_NE(refused({{"customers", json::array()}}).find("between 1 and"), std::string::npos);
  EXPECT_NE(refused({{"ghost", {"id"}}}).find("does not include"), std::string::npos);
  EXPECT_NE(refused({{"customers", {1}}}).find("request.columns.customers"), std::string::npos);
  EXPECT_NE(refused(json::array()).find("must be an object"), std::string::npos);
  const std::string withheld = refused({{"orders", {"order_id", "customer_id"}}});
  EXPECT_NE(withheld.find("column 'customer_id' of 'orders' is withheld by the policy (analysts)"),
            std::string::npos)
      << withheld;
  EXPECT_EQ(client_->Get("/v1/requests", Auth(kAlice)).json()["requests"].size(), 0u);
}

TEST_F(KernelE2EColumns, TheCatalogPreviewsThePolicysAnswerForTheCaller) {
  auto preview = [&](const char* token) {
    auto r = client_->Get("/v1/catalog?for=me", Auth(token));
    EXPECT_EQ(r.status, 200u) << r.body;
    std::map<std::string, json> by_name;
    const json catalog = r.json();
    for (const auto& d : catalog["datasets"]) by_name[d["name"]] = d;
    return by_name;
  };
  auto alice = preview(kAlice);
  ASSERT_EQ(alice.size(), 3u);
  const json& customers = alice["customers"]["for_me"];
  EXPECT_EQ(customers.value("effect", ""), "needs_approval") << customers.dump();
  EXPECT_EQ(customers.value("rule", ""), "analysts");
  EXPECT_EQ(customers["approval"]["groups"], json({"owners"}));
  EXPECT_EQ(customers["obligations"]["masks"], json({{"email", "redact"}}));
  EXPECT_EQ(customers.value("max_window_seconds", 0), 3600);
  EXPECT_EQ(alice["orders"]["for_me"]["obligations"]["columns"], json({"order_id", "amount"}));
  EXPECT_EQ(alice["orders"]["columns"].size(), 3u);  // the catalog itself is unchanged

  auto dave = preview(kDave);
  EXPECT_EQ(dave["orders"]["for_me"].value("effect", ""), "deny");
  EXPECT_EQ(dave["orders"]["for_me"].value("rule", ""), "no-contractors");
  EXPECT_FALSE(dave["orders"]["for_me"].contains("obligations"));

  // The plain catalog is the same for everyone; only for=me is known.
  EXPECT_FALSE(client_->Get("/v1/catalog", Auth(kAlice)).json()["datasets"][0].contains("for_me"));
  EXPECT_EQ(client_->Get("/v1/catalog?for=you", Auth(kAlice)).status, 400u);
  // A preview is not an ask: nothing was recorded.
  EXPECT_EQ(client_->Get("/v1/requests", Auth(kCarol)).json()["requests"].size(), 0u);
}

// Every page of an audit search, followed through its page tokens.
json SearchAllPages(HttpClient& client, const char* token, const std::string& query) {
  json records = json::array();
  std::string page_token;
  for (int page = 0; page < 1000; ++page) {
    std::string path = "/v1/audit?" + query;
    if (!page_token.empty()) path += "&page_token=" + page_token;
    auto r = client.Get(path, Auth(token));
    EXPECT_EQ(r.status, 200u) << path << ": " << r.body;
    if (r.status != 200u) break;
    const json page_json = r.json();
    for (const auto& record : page_json["records"]) records.push_back(record);
    if (!page_json.contains("next_page_token")) break;
    page_token = page_json["next_page_token"];
  }
  return records;
}

std::set<std::string> RequestIdsOf(const json& records) {
  std::set<std::string> ids;
  for (const auto& record : records) ids.insert(record.value("request_id", ""));
  return ids;
}

TEST_F(KernelE2E, AuditSearchFindsRecordsAcrossRequestsForWhoMaySeeThem) {
  const std::string orders =
      Create(kAlice, {{"datasets", {"orders"}}, {"purpose", "churn"}}).value("id", "");
  const std::string customers =
      Create(kAlice, {{"datasets", {"customers"}}, {"purpose", "mailing"}}).value("id", "");
  const std::string refused =
      Create(kDave, {{"datasets", {"orders"}}, {"purpose", "curious"}}).value("id", "");
  ASSERT_EQ(Action(kBob, customers, "deny", R"({"comment":"not for mailings"})").status, 200u);
  const std::string all_requests = "event=request.*";

  // An admin sees every request's records, newest first.
  const json everything = SearchAllPages(*client_, kCarol, all_requests + "&limit=1000");
  EXPECT_EQ(RequestIdsOf(everything), (std::set<std::string>{orders, customers, refused}));
  for (size_t i = 1; i < everything.size(); ++i) {
    EXPECT_GT(everything[i - 1].value("seq", 0), everything[i].value("seq", 0));
  }
  EXPECT_EQ(everything[0].value("event", ""), "request.denied");  // bob's, the last
  // Two at a time, through page tokens: the same records.
  EXPECT_EQ(SearchAllPages(*client_, kCarol, all_requests + "&limit=2"), everything);

  // Who: what dave asked for; what bob did.
  EXPECT_EQ(RequestIdsOf(SearchAllPages(*client_, kCarol, "subject=dave")),
            std::set<std::string>{refused});
  const json by_bob = SearchAllPages(*client_, kCarol, "subject=bob");
  ASSERT_EQ(by_bob.size(), 1u) << by_bob.dump();
  EXPECT_EQ(by_bob[0].value("event", ""), "request.denied");
  EXPECT_EQ(by_bob[0]["actor"].value("subject", ""), "bob");
  // Which dataset; which request; which events.
  EXPECT_EQ(RequestIdsOf(SearchAllPages(*client_, kCarol, "dataset=customers")),
            std::set<std::string>{customers});
  EXPECT_EQ(SearchAllPages(*client_, kCarol, "event=request.submitted,request.denied").size(), 5u);
  EXPECT_EQ(
      RequestIdsOf(SearchAllPages(*client_, kCarol, "request=" + orders + "&event=request.*")),
      std::set<std::string>{orders});

  // Everyone else sees the records of the requests they may see.
  EXPECT_EQ(RequestIdsOf(SearchAllPages(*client_, kAlice, "limit=1000")),
            (std::set<std::string>{orders, customers}));
  EXPECT_EQ(RequestIdsOf(SearchAllPages(*client_, kDave, "limit=1000")),
            std::set<std::string>{refused});
  // Records of no request (the kernel's start, refused credentials) are
  // for admins.
  EXPECT_EQ(client_->Get("/v1/catalog", Auth("alk_not_a_token")).status, 401u);
  const json refusals = SearchAllPages(*client_, kCarol, "event=auth.refused");
  EXPECT_EQ(refusals.size(), 1u);
  EXPECT_TRUE(SearchAllPages(*client_, kBob, "event=auth.refused").empty());

  // Time: nothing before the test, nothing after now; RFC 3339 or seconds.
  EXPECT_TRUE(SearchAllPages(*client_, kCarol, "until=2020-01-01T00:00:00Z").empty());
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  EXPECT_TRUE(SearchAllPages(*client_, kCarol, "since=" + std::to_string(now_s + 3600)).empty());
  EXPECT_EQ(SearchAllPages(*client_, kCarol,
                           all_requests + "&since=" + std::to_string(now_s - 3600) + "&limit=1000"),
            everything);

  // Bad input is named.
  for (const std::string bad :
       {"event=Request.Approved", "event=request*", "since=yesterday", "limit=0", "limit=1001",
        "page_token=abc", "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        "request=not%20an%20id", "page_token=5"}) {
    auto r = client_->Get("/v1/audit?" + bad, Auth(kCarol));
    EXPECT_EQ(r.status, 400u) << bad << ": " << r.body;
  }
}

TEST_F(KernelE2E, AuditVerifyDetectsTampering) {
  const std::string id = ReadyRequest();
  ASSERT_EQ(Action(kAlice, id, "revoke").status, 200u);
  kernel_->Stop();
  const std::string log = dir_.path() + "/state/audit.log";
  std::vector<std::string> lines;
  {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  ASSERT_GT(lines.size(), 6u);
  std::string out;
  ASSERT_EQ(RunAirlockd({"audit", "verify", log}, &out), 0) << out;

  auto check = [&](const std::vector<std::string>& tampered, const std::string& what) {
    const std::string copy = dir_.path() + "/tampered.log";
    std::ofstream f(copy, std::ios::trunc);
    for (const auto& l : tampered) f << l << "\n";
    f.close();
    std::string result;
    EXPECT_EQ(RunAirlockd({"audit", "verify", copy}, &result), 1) << what << ": " << result;
    EXPECT_NE(result.find("TAMPERED at line"), std::string::npos) << what << ": " << result;
    return result;
  };
  auto edited = lines;
  edited[3] =
      std::regex_replace(edited[3], std::regex("\"request_id\":\"req_"), "\"request_id\":\"req_x");
  ASSERT_NE(edited[3], lines[3]);
  EXPECT_NE(check(edited, "edited").find("line 4"), std::string::npos);
  auto deleted = lines;
  deleted.erase(deleted.begin() + 2);
  check(deleted, "deleted");
  auto swapped = lines;
  std::swap(swapped[2], swapped[3]);
  check(swapped, "swapped");
}

TEST(KernelE2EApproval, UnansweredRequestExpires) {
  TempDir dir("airlock-e2e-");
  TestPki pki = GenerateTestPki(dir.path());
  json config = TestConfig(dir.path(), pki, false);
  config["limits"] = {{"approval_timeout_seconds", 1}};
  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient client("127.0.0.1", kernel.port());
  auto created = client.Post("/v1/requests", R"({"datasets": ["orders"]})", Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  std::string state;
  for (int i = 0; i < 200 && state != "expired"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    state = client.Get("/v1/requests/" + id, Auth(kAlice)).json().value("state", "");
  }
  EXPECT_EQ(state, "expired");
  EXPECT_EQ(client.Post("/v1/requests/" + id + "/approve", "", Auth(kBob)).status, 409u);
}

class KernelE2ETls : public KernelE2E {
 protected:
  bool TlsKernel() const override { return true; }
};

TEST_F(KernelE2ETls, ApiServesOverTls) {
  auto catalog = client_->Get("/v1/catalog", Auth(kAlice));
  EXPECT_EQ(catalog.status, 200u) << catalog.error;
  EXPECT_EQ(client_->Get("/v1/catalog").status, 401u);
  const std::string id = ReadyRequest();
  EXPECT_EQ(Action(kAlice, id, "revoke").json().value("state", ""), "closed");
  // A plaintext client gets no HTTP answer from the TLS port.
  HttpClient plain("127.0.0.1", kernel_->port());
  EXPECT_NE(plain.Get("/healthz").status, 200u);
}

TEST(KernelConfig, InvalidConfigurationNamesTheKey) {
  TempDir dir("airlock-cfg-");
  std::ofstream(dir.File("bad.json")) << R"({"identity": [], "policy": {}})";
  std::string out;
  EXPECT_EQ(RunAirlockd({"check-config", "--config", dir.File("bad.json")}, &out), 1);
  EXPECT_NE(out.find("identity"), std::string::npos) << out;
  std::ofstream(dir.File("worse.json")) << "{not json";
  EXPECT_EQ(RunAirlockd({"serve", "--config", dir.File("worse.json")}, &out), 2);
  EXPECT_NE(out.find("not valid JSON"), std::string::npos) << out;
}

TEST(KernelConfig, UnknownPluginIsRefusedAtStart) {
  TempDir dir("airlock-cfg-");
  TestPki pki = GenerateTestPki(dir.path());
  json config = TestConfig(dir.path(), pki, false);
  config["policy"]["plugin"] = dir.path() + "/no_such_policy.so";
  KernelProcess kernel(dir.path(), config);
  EXPECT_FALSE(kernel.Start());
  EXPECT_NE(kernel.log().find("no_such_policy.so"), std::string::npos) << kernel.log();
}

}  // namespace
}  // namespace airlock::test
