// The policy as the kernel applies it: a real airlockd whose rules policy is
// reloaded through POST /v1/admin/policy/reload and SIGHUP (a valid document
// changes decisions; an invalid one is refused with its reason while the old
// one keeps deciding), a two-approver rule enforced end to end, and the
// http-decision policy using its bearer token (a kernel-side secret).
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_http_server.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_policy_alice_1";    // analysts
constexpr const char* kOlivia = "alk_policy_olivia_2";  // analysts + owners
constexpr const char* kBob = "alk_policy_bob_3";        // owners
constexpr const char* kErin = "alk_policy_erin_4";      // owners
constexpr const char* kCarol = "alk_policy_carol_5";    // admins

std::string Plugin(const std::string& name) {
  return std::string(AIRLOCK_PLUGIN_DIR) + "/" + name + ".so";
}

// Version A: analysts read orders freely; customers need two owners.
json PolicyA() {
  return json::parse(R"({"version": 1, "rules": [
    {"name": "analysts-orders", "effect": "allow", "subjects": {"groups": ["analysts"]},
     "datasets": ["orders"]},
    {"name": "pii-two-owners", "effect": "allow", "subjects": {"groups": ["analysts"]},
     "datasets": ["customers"],
     "approval": {"groups": ["owners"], "count": 2, "timeout_seconds": 3600},
     "obligations": {"customers": {"masks": {"email": "redact"}}}}]})");
}

// Version B: orders closed to analysts.
json PolicyB() {
  json p = PolicyA();
  p["rules"][0] = json::parse(R"({"name": "orders-closed", "effect": "deny",
      "subjects": {"groups": ["analysts"]}, "datasets": ["orders"]})");
  return p;
}

json InvalidPolicy() {
  json p = PolicyA();
  p["rules"][1]["approval"]["count"] = 0;
  return p;
}

json Config(const std::string& dir, const TestPki& pki, const json& policy) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/customers.csv") << "id,email\n1,ada@example.com\n";
  std::ofstream(dir + "/data/orders.csv") << "order_id,amount\n10,100.5\n";
  auto token = [](const char* raw, const char* subject, json groups) {
    return json{{"sha256", Sha256HexOf(raw)},
                {"subject", subject},
                {"kind", "human"},
                {"groups", std::move(groups)}};
  };
  return {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
      {"state_dir", dir + "/state"},
      {"identity",
       {{{"name", "tokens"},
         {"plugin", Plugin("airlock_identity_static_tokens")},
         {"config",
          {{"tokens",
            {token(kAlice, "alice", {"analysts"}), token(kOlivia, "olivia", {"analysts", "owners"}),
             token(kBob, "bob", {"owners"}), token(kErin, "erin", {"owners"}),
             token(kCarol, "carol", {"admins"})}}}}}}},
      {"policy",
       {{"name", "rules"}, {"plugin", Plugin("airlock_policy_rules")}, {"config", policy}}},
      {"isolator", {{"name", "inprocess"}, {"plugin", Plugin("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", Plugin("airlock_connector_files")}, {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets",
       {{{"name", "customers"}, {"connector", "files"}, {"object", "customers.csv"}},
        {{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}}}},
      {"access", {{"admin_groups", {"admins"}}, {"reviewer_groups", {"owners"}}}}};
}

class PolicyE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), Config(dir_.path(), pki_, PolicyA()));
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
  }

  // Rewrites the configuration file the kernel re-reads on reload.
  void WritePolicy(const json& policy) {
    const std::string tmp = kernel_->config_path() + ".tmp";
    std::ofstream(tmp) << Config(dir_.path(), pki_, policy).dump(2);
    std::filesystem::rename(tmp, kernel_->config_path());
  }

  json Ask(const char* token, const std::string& dataset) {
    auto r = client_->Post(
        "/v1/requests", json{{"datasets", {dataset}}, {"window_seconds", 300}}.dump(), Auth(token));
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.json();
  }

  // Polls `probe` until it holds or 15 s pass (a signal is handled asynchronously).
  bool Eventually(const std::function<bool()>& probe) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      if (probe()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return probe();
  }

  TempDir dir_{"airlock-e2e-policy-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(PolicyE2E, AdminReloadChangesDecisionsAndRefusesInvalidDocuments) {
  json first = Ask(kAlice, "orders");
  EXPECT_NE(first.value("state", ""), "denied") << first.dump();
  EXPECT_EQ(first["decision"]["rule"], "analysts-orders");

  // Only admins reload.
  EXPECT_EQ(client_->Post("/v1/admin/policy/reload", "", Auth(kAlice)).status, 403u);

  WritePolicy(PolicyB());
  auto reloaded = client_->Post("/v1/admin/policy/reload", "", Auth(kCarol));
  ASSERT_EQ(reloaded.status, 200u) << reloaded.body;
  json second = Ask(kAlice, "orders");
  EXPECT_EQ(second.value("state", ""), "denied") << second.dump();
  EXPECT_EQ(second["decision"]["rule"], "orders-closed");
  EXPECT_EQ(second.value("reason", ""), "rule 'orders-closed' denies alice access to orders");

  WritePolicy(InvalidPolicy());
  auto refused = client_->Post("/v1/admin/policy/reload", "", Auth(kCarol));
  EXPECT_EQ(refused.status, 422u) << refused.body;
  EXPECT_NE(refused.body.find("previous policy stays in force"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("rules[1].approval.count must be >= 1"), std::string::npos)
      << refused.body;
  // Policy B still decides.
  json third = Ask(kAlice, "orders");
  EXPECT_EQ(third.value("state", ""), "denied") << third.dump();
  EXPECT_EQ(third["decision"]["rule"], "orders-closed");
  json pii = Ask(kAlice, "customers");
  EXPECT_EQ(pii.value("state", ""), "pending_approval") << pii.dump();
  EXPECT_EQ(pii["decision"]["approval"]["count"], 2);
}

TEST_F(PolicyE2E, SighupReloadsAndKeepsTheOldPolicyWhenTheNewOneIsInvalid) {
  WritePolicy(PolicyB());
  ASSERT_EQ(::kill(kernel_->pid(), SIGHUP), 0);
  EXPECT_TRUE(Eventually([&] { return Ask(kAlice, "orders").value("state", "") == "denied"; }))
      << kernel_->log();

  WritePolicy(InvalidPolicy());
  ASSERT_EQ(::kill(kernel_->pid(), SIGHUP), 0);
  EXPECT_TRUE(Eventually([&] {
    return kernel_->log().find("rules[1].approval.count must be >= 1") != std::string::npos;
  })) << kernel_->log();
  json still = Ask(kAlice, "orders");
  EXPECT_EQ(still.value("state", ""), "denied") << still.dump();
  EXPECT_EQ(still["decision"]["rule"], "orders-closed");

  WritePolicy(PolicyA());
  ASSERT_EQ(::kill(kernel_->pid(), SIGHUP), 0);
  EXPECT_TRUE(Eventually([&] { return Ask(kAlice, "orders").value("state", "") != "denied"; }))
      << kernel_->log();
}

TEST_F(PolicyE2E, TwoApproverRuleNeedsTwoDistinctApproversAndNoSelfApproval) {
  // olivia is an analyst and an owner: she may ask, but not approve her own request.
  json asked = Ask(kOlivia, "customers");
  ASSERT_EQ(asked.value("state", ""), "pending_approval") << asked.dump();
  EXPECT_EQ(asked["decision"]["rule"], "pii-two-owners");
  const std::string id = asked.value("id", "");
  auto approve = [&](const char* token) {
    return client_->Post("/v1/requests/" + id + "/approve", R"({"comment": "ok"})", Auth(token));
  };

  auto self = approve(kOlivia);
  EXPECT_EQ(self.status, 403u) << self.body;
  EXPECT_NE(self.body.find("self-approval"), std::string::npos) << self.body;
  EXPECT_EQ(approve(kAlice).status, 404u);  // not a reviewer: the request is not even visible

  auto one = approve(kBob);
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(one.json().value("state", ""), "pending_approval") << one.body;
  auto again = approve(kBob);
  EXPECT_EQ(again.status, 409u) << again.body;  // the same approver does not count twice

  auto two = approve(kErin);
  ASSERT_EQ(two.status, 200u) << two.body;
  EXPECT_NE(two.json().value("state", ""), "pending_approval") << two.body;
  EXPECT_EQ(two.json()["approvals"].size(), 2u);
}

// Everything the kernel wrote under `dir` (state, audit, results, its log),
// except the file `skip`.
std::string EverythingUnder(const std::string& dir, const std::string& skip) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path() == skip) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

// The http-decision policy's bearer token is the kernel's own credential: it
// is named in the policy plugin's configuration, so the kernel resolves it,
// the decision service receives it, and it appears in no file, log or answer.
TEST(PolicyServiceE2E, BearerTokenReachesTheDecisionServiceAndNothingElse) {
  TempDir dir("airlock-e2e-opa-");
  const TestPki pki = GenerateTestPki(dir.path());
  const std::string token = "opa-bearer-9d1f3c77a2e4";
  const std::string token_file = dir.path() + "/opa.token";
  std::ofstream(token_file) << token << "\n";
  std::filesystem::permissions(
      token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  TestHttpServer service([&](const ReceivedRequest& r) {
    if (r.Header("Authorization") != "Bearer " + token) {
      return ScriptedReply{401, R"({"error":"who?"})"};
    }
    return ScriptedReply{
        200, R"({"result": {"effect": "deny", "reason": "service says no", "rule": "opa-1"}})"};
  });
  json config = Config(dir.path(), pki, PolicyA());
  config["policy"] = {{"name", "opa"},
                      {"plugin", Plugin("airlock_policy_http_decision")},
                      {"config",
                       {{"url", "http://127.0.0.1:" + std::to_string(service.port())},
                        {"decision_path", "airlock/decision"},
                        {"bearer_token_secret", "file:" + token_file}}}};
  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient client("127.0.0.1", kernel.port());
  auto r = client.Post(
      "/v1/requests", json{{"datasets", {"orders"}}, {"window_seconds", 300}}.dump(), Auth(kAlice));
  ASSERT_EQ(r.status, 201u) << r.body;
  const json request = r.json();
  EXPECT_EQ(request.value("state", ""), "denied") << r.body;
  EXPECT_NE(request.value("reason", "").find("service says no"), std::string::npos) << r.body;
  EXPECT_EQ(request["decision"]["rule"], "opa-1") << r.body;
  const auto seen = service.requests();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].target, "/v1/data/airlock/decision");
  EXPECT_EQ(seen[0].Header("Authorization"), "Bearer " + token);

  kernel.Stop();
  EXPECT_EQ(r.body.find(token), std::string::npos);
  EXPECT_EQ(kernel.log().find(token), std::string::npos);
  EXPECT_EQ(EverythingUnder(dir.path(), token_file).find(token), std::string::npos);
}

}  // namespace
}  // namespace airlock::test
