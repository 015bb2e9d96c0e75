// Two tenants sharing one kernel, each with a site of its own: two real
// airlock-agent processes, each in a network namespace whose only route
// leads to the kernel's agent listener. Each site syncs the metadata of
// datasets it declares itself (a canary in each source never reaches the
// kernel); each tenant sees only its own catalog, sites, requests, events
// and audit; every probe of the other tenant's objects is answered 404, as
// an unknown id is, and audited for the owner's admins. A tenant's admin
// suspends its own site in the middle of a query (dropped within a second,
// enclave destroyed, next ask refused with the reason, across a kernel
// restart) without touching the other tenant's site; resuming restores it.
//
// The test moves itself (and so the kernel it starts) into a private network
// namespace first; it is skipped where that, or `ip`, is not available.
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/kernel/e2e_agent/agent_process.h"
#include "tests/kernel/e2e_agent/site_probes.h"
#include "tests/support/http_client.h"
#include "tests/support/sse_watcher.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// acme: alice asks (a member by group), bob approves and administers.
// globex: carol asks (her identity says globex), dave administers (a member
// by subject). root is the platform's admin, in no tenant. eve belongs to
// no tenant; mallory's identity names a tenant this kernel does not serve.
constexpr const char* kAlice = "alk_tenants_alice";
constexpr const char* kBob = "alk_tenants_bob";
constexpr const char* kCarol = "alk_tenants_carol";
constexpr const char* kDave = "alk_tenants_dave";
constexpr const char* kRoot = "alk_tenants_root";
constexpr const char* kEve = "alk_tenants_eve";
constexpr const char* kMallory = "alk_tenants_mallory";
constexpr const char* kEnrollA = "enroll-acme-site-4d1e";
constexpr const char* kEnrollB = "enroll-globex-site-9b7c";
constexpr const char* kCanaryA = "CANARY-acme-31f6c0";
constexpr const char* kCanaryB = "CANARY-globex-8e2a57";
const json kMinIsolation = {"pid_namespace", "network_namespace", "no_new_privs"};

json Token(const std::string& raw, const std::string& subject, std::vector<std::string> groups,
           const std::string& tenant = "") {
  json entry = {{"sha256", Sha256HexOf(raw)},
                {"subject", subject},
                {"kind", "human"},
                {"groups", std::move(groups)}};
  if (!tenant.empty()) entry["tenant"] = tenant;
  return entry;
}

class TenantsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || !std::filesystem::exists("/usr/sbin/ip") ||
        !std::filesystem::exists("/usr/bin/unshare") ||
        !std::filesystem::exists("/usr/bin/nsenter")) {
      GTEST_SKIP() << "needs root, ip, unshare and nsenter";
    }
    if (::unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "cannot create a network namespace";
    // One link per site; the kernel's agent listener takes both.
    ASSERT_TRUE(AddKernelSideLink("vka", "sa", "127.66.0.1"));
    ASSERT_TRUE(AddKernelSideLink("vkb", "sb", "127.67.0.1"));
    pki_ = GenerateTestPki(dir_.path());
  }

  void TearDown() override {
    agents_.clear();
    kernel_.reset();
  }

  json Config() {
    const std::string dir = dir_.path();
    std::filesystem::create_directories(dir + "/data");
    std::ofstream(dir + "/data/acme.csv") << "id,name\n1,Ada\n2,Grace\n";
    std::ofstream(dir + "/data/globex.csv") << "id,name\n1,Hank\n";
    json identity = {{{"name", "tokens"},
                      {"plugin", PluginPath("airlock_identity_static_tokens")},
                      {"config",
                       {{"tokens",
                         {Token(kAlice, "alice", {"acme", "analysts"}),
                          Token(kBob, "bob", {"acme", "owners", "acme-admins"}),
                          Token(kCarol, "carol", {"analysts"}, "globex"),
                          Token(kDave, "dave", {"owners", "globex-admins"}),
                          Token(kRoot, "root", {"platform"}), Token(kEve, "eve", {"analysts"}),
                          Token(kMallory, "mallory", {"acme", "analysts"}, "initech")}}}}}};
    // globex decides its asks itself: its analysts need no approval.
    const json globex_policy = {{"version", 1},
                                {"rules",
                                 {{{"name", "globex-analysts"},
                                   {"effect", "allow"},
                                   {"subjects", {{"groups", {"analysts"}}}},
                                   {"datasets", {"*"}},
                                   {"max_window_seconds", 3600}}}}};
    return {
        {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
        {"state_dir", dir + "/state"},
        {"identity", identity},
        {"policy", RulesPolicyRef(AnalystsPolicy({"*"}))},
        {"isolator", ProcessIsolatorRef(dir + "/enclaves", kMinIsolation)},
        {"tunnel", HttpsTunnelRef(pki_)},
        {"connectors",
         {{"files",
           {{"plugin", PluginPath("airlock_connector_files")},
            {"config", {{"root", dir + "/data"}}}}}}},
        {"datasets",
         {{{"name", "acme_customers"},
           {"connector", "files"},
           {"object", "acme.csv"},
           {"tenant", "acme"}},
          {{"name", "globex_customers"},
           {"connector", "files"},
           {"object", "globex.csv"},
           {"tenant", "globex"}}}},
        {"access", {{"admin_groups", {"platform"}}}},
        {"tenants",
         {{"acme", {{"groups", {"acme"}}, {"admin_groups", {"acme-admins"}}}},
          {"globex",
           {{"subjects", {"dave"}},
            {"admin_groups", {"globex-admins"}},
            {"policy",
             {{"plugin", PluginPath("airlock_policy_rules")}, {"config", globex_policy}}}}}}},
        {"agents",
         {{"listen_address", "0.0.0.0"},
          {"server_names", {"127.66.0.1", "127.67.0.1"}},
          {"port", agent_port_},
          {"heartbeat_interval_ms", 200},
          {"offline_after_ms", 5000},
          {"agents",
           {{"edge_a", {{"enrollment_token_sha256", Sha256HexOf(kEnrollA)}, {"tenant", "acme"}}},
            {"edge_b",
             {{"enrollment_token_sha256", Sha256HexOf(kEnrollB)}, {"tenant", "globex"}}}}}}}};
  }

  void StartKernel() {
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), Config());
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
    const json agents = client_->Get("/v1/agents", Auth(kRoot)).json();
    agent_port_ = agents["listen"].value("port", 0);
    ASSERT_NE(agent_port_, 0) << agents.dump();
  }

  // A site of its own: its agent declares `dataset` (a CSV holding `canary`)
  // and runs in a network namespace reached through `link` at `address`.
  AgentProcess& StartSite(const std::string& name, const std::string& token,
                          const std::string& dataset, const std::string& canary,
                          const std::string& kernel_address, const std::string& link,
                          const std::string& address) {
    const std::string dir = dir_.path();
    std::filesystem::create_directories(dir + "/" + name + "-data");
    std::ofstream(dir + "/" + name + "-data/orders.csv")
        << "id,customer,amount\n1,Ada,10\n2," << canary << ",20\n";
    json config = SiteAgentConfig(dir, name, name + "-state", token, name, kernel_address,
                                  agent_port_, kMinIsolation);
    config["connectors"] = {{"site_files",
                             {{"plugin", PluginPath("airlock_connector_files")},
                              {"config", {{"root", dir + "/" + name + "-data"}}}}}};
    config["datasets"] = {
        {{"name", dataset}, {"connector", "site_files"}, {"object", "orders.csv"}}};
    // Synced on connect; no periodic describe enclave comes and goes while
    // the test counts a site's enclaves.
    config["sync_interval_seconds"] = 3600;
    const std::string path = dir + "/" + name + ".json";
    std::ofstream(path) << config.dump(2);
    agents_.push_back(std::make_unique<AgentProcess>(
        path, dir + "/" + name + ".log",
        std::vector<std::string>{"/usr/bin/unshare", "--net", "--"}));
    AgentProcess& agent = *agents_.back();
    EXPECT_TRUE(agent.Start());
    EXPECT_TRUE(WaitForOwnNetwork(agent.pid()));
    EXPECT_TRUE(GiveLinkTo(agent.pid(), link, address));
    return agent;
  }

  json Agents(const char* token) { return client_->Get("/v1/agents", Auth(token)).json(); }

  std::string AgentState(const std::string& name) {
    for (const json& a : Agents(kRoot).value("agents", json::array())) {
      if (a.value("name", "") == name) return a.value("status", "");
    }
    return "";
  }

  // Dataset name -> catalog entry, as `token` sees the catalog.
  std::map<std::string, json> Catalog(const char* token) {
    std::map<std::string, json> out;
    for (const json& d : client_->Get("/v1/catalog", Auth(token)).json().value("datasets", json()))
      out[d.value("name", "")] = d;
    return out;
  }

  std::string Ask(const char* token, const std::string& dataset, unsigned want = 201) {
    auto created = client_->Post(
        "/v1/requests",
        json{{"datasets", {dataset}}, {"window_seconds", 600}, {"purpose", "test"}}.dump(),
        Auth(token));
    EXPECT_EQ(created.status, want) << created.body;
    return created.json().value("id", "");
  }

  std::string WaitForState(const std::string& id, const char* token, const std::string& want) {
    std::string state;
    WaitUntil(
        [&] {
          state = client_->Get("/v1/requests/" + id, Auth(token)).json().value("state", "");
          return state == want || state == "failed";
        },
        std::chrono::seconds(30));
    return state;
  }

  std::vector<json> Audit() { return AuditRecords(dir_.path() + "/state/audit.log"); }

  // The probes of `subject` the audit holds.
  std::vector<json> Probes(const std::string& subject) {
    std::vector<json> out;
    for (const json& r : Audit()) {
      if (r.value("event", "") == "tenant.probe_refused" &&
          r.value("principal", json::object()).value("subject", "") == subject) {
        out.push_back(r);
      }
    }
    return out;
  }

  // Runs `probe`, which must be answered `status` (as for an unknown id or
  // name) and audited once more as a probe of acme's by `subject` (of globex).
  void ExpectRefusedProbe(const std::string& what, const std::string& subject,
                          const std::function<unsigned()>& probe, unsigned status = 404) {
    SCOPED_TRACE(what);
    const size_t before = Probes(subject).size();
    EXPECT_EQ(probe(), status);
    const std::vector<json> after = Probes(subject);
    ASSERT_EQ(after.size(), before + 1) << "the probe was not audited";
    EXPECT_EQ(after.back().value("tenant", ""), "acme") << after.back().dump();
    EXPECT_EQ(after.back()["principal"].value("tenant", ""), "globex") << after.back().dump();
  }

  json Mcp(const char* token, const std::string& tool, const json& arguments) {
    const auto r = client_->Post("/mcp",
                                 json{{"jsonrpc", "2.0"},
                                      {"id", 1},
                                      {"method", "tools/call"},
                                      {"params", {{"name", tool}, {"arguments", arguments}}}}
                                     .dump(),
                                 Auth(token));
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.json();
  }

  TempDir dir_{"airlock-tenants-e2e-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> client_;
  uint16_t agent_port_ = 0;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

std::set<std::string> Names(const std::map<std::string, json>& catalog) {
  std::set<std::string> names;
  for (const auto& [name, entry] : catalog) names.insert(name);
  return names;
}

TEST_F(TenantsE2E, TwoTenantsWithASiteEachNeverSeeOrTouchTheOthers) {
  StartKernel();
  AgentProcess& site_a =
      StartSite("edge_a", kEnrollA, "acme_orders", kCanaryA, "127.66.0.1", "sa", "127.66.0.2");
  AgentProcess& site_b =
      StartSite("edge_b", kEnrollB, "globex_orders", kCanaryB, "127.67.0.1", "sb", "127.67.0.2");
  ASSERT_TRUE(WaitUntil([&] {
    return AgentState("edge_a") == "online" && AgentState("edge_b") == "online";
  })) << site_a.log()
      << site_b.log() << kernel_->log();
  // Each site in its own network namespace, reaching the kernel's agent
  // port only.
  for (AgentProcess* site : {&site_a, &site_b}) {
    EXPECT_NE(std::filesystem::read_symlink("/proc/" + std::to_string(site->pid()) + "/ns/net"),
              std::filesystem::read_symlink("/proc/self/ns/net"));
    EXPECT_FALSE(NamespaceReaches(site->pid(), "127.0.0.1", kernel_->port()));
  }

  // --- the catalog: the sites' metadata, each tenant its own -------------
  ASSERT_TRUE(WaitUntil([&] {
    const auto all = Catalog(kRoot);
    return all.count("acme_orders") && all.at("acme_orders").contains("columns") &&
           all.count("globex_orders") && all.at("globex_orders").contains("columns");
  })) << client_->Get("/v1/catalog", Auth(kRoot)).body;
  const auto all = Catalog(kRoot);
  EXPECT_EQ(all.at("acme_orders").value("tenant", ""), "acme");
  EXPECT_EQ(all.at("globex_orders").value("tenant", ""), "globex");
  EXPECT_EQ(all.at("acme_orders")["site"].value("agent", ""), "edge_a");
  EXPECT_EQ(all.at("globex_customers").value("tenant", ""), "globex");
  EXPECT_EQ(Names(Catalog(kAlice)), (std::set<std::string>{"acme_customers", "acme_orders"}));
  EXPECT_EQ(Names(Catalog(kCarol)), (std::set<std::string>{"globex_customers", "globex_orders"}));
  EXPECT_EQ(Names(Catalog(kDave)), Names(Catalog(kCarol)));
  auto agent_names = [&](const char* token) {
    std::set<std::string> names;
    for (const json& a : Agents(token).value("agents", json::array()))
      names.insert(a.value("name", ""));
    return names;
  };
  EXPECT_EQ(agent_names(kAlice), std::set<std::string>{"edge_a"});
  EXPECT_EQ(agent_names(kCarol), std::set<std::string>{"edge_b"});
  EXPECT_EQ(agent_names(kRoot), (std::set<std::string>{"edge_a", "edge_b"}));
  // Only metadata crossed: neither canary is anywhere on the kernel's side.
  for (const char* canary : {kCanaryA, kCanaryB}) {
    EXPECT_FALSE(MemoryHolds(kernel_->pid(), canary)) << canary;
    EXPECT_FALSE(FilesHold(dir_.path() + "/state", canary)) << canary;
    EXPECT_EQ(kernel_->log().find(canary), std::string::npos) << canary;
  }

  // --- who belongs where ---------------------------------------------------
  const json me = client_->Get("/v1/me", Auth(kAlice)).json();
  EXPECT_EQ(me.value("tenant", ""), "acme") << me.dump();
  EXPECT_EQ(client_->Get("/v1/me", Auth(kDave)).json().value("tenant", ""), "globex");
  EXPECT_EQ(client_->Get("/v1/me", Auth(kCarol)).json().value("tenant", ""), "globex");
  const json root = client_->Get("/v1/me", Auth(kRoot)).json();
  EXPECT_TRUE(root.value("platform_admin", false)) << root.dump();
  EXPECT_FALSE(client_->Get("/v1/me", Auth(kBob)).json().value("platform_admin", true));
  const auto eve = client_->Get("/v1/me", Auth(kEve));
  EXPECT_EQ(eve.status, 403u) << eve.body;
  EXPECT_NE(eve.body.find("no tenant"), std::string::npos) << eve.body;
  EXPECT_EQ(client_->Get("/v1/catalog", Auth(kMallory)).status, 403u);

  // --- one request each, each on its own site ------------------------------
  Watcher carol_watch(kernel_->port(), kCarol);
  ASSERT_EQ(carol_watch.Status(), 200u);
  const std::string acme_id = Ask(kAlice, "acme_orders");
  EXPECT_EQ(WaitForState(acme_id, kAlice, "pending_approval"), "pending_approval")
      << "acme's policy wants an approval";
  ASSERT_EQ(client_->Post("/v1/requests/" + acme_id + "/approve", "{}", Auth(kBob)).status, 200u);
  ASSERT_EQ(WaitForState(acme_id, kAlice, "ready"), "ready");
  // globex's own policy lets its analysts in without one.
  const std::string globex_id = Ask(kCarol, "globex_orders");
  ASSERT_EQ(WaitForState(globex_id, kCarol, "ready"), "ready");
  // The describe enclave of a (re)connect sync may still be ending.
  EXPECT_TRUE(WaitUntil([&] { return EnclaveChildren(site_a.pid()).size() == 1; }));
  EXPECT_TRUE(WaitUntil([&] { return EnclaveChildren(site_b.pid()).size() == 1; }));

  // --- every probe of acme's objects by globex: 404, and audited -----------
  const std::string req = "/v1/requests/" + acme_id;
  auto carol_post = [&](const std::string& path, const std::string& body) {
    return [this, path, body] { return client_->Post(path, body, Auth(kCarol)).status; };
  };
  auto carol_get = [&](const std::string& path) {
    return [this, path] { return client_->Get(path, Auth(kCarol)).status; };
  };
  ExpectRefusedProbe("get", "carol", carol_get(req));
  ExpectRefusedProbe("approve", "carol", carol_post(req + "/approve", "{}"));
  ExpectRefusedProbe("deny", "carol", carol_post(req + "/deny", "{}"));
  ExpectRefusedProbe("revoke", "carol", carol_post(req + "/revoke", "{}"));
  ExpectRefusedProbe("extend", "carol", carol_post(req + "/extend", R"({"window_seconds":60})"));
  ExpectRefusedProbe("credentials", "carol", carol_post(req + "/credentials", "{}"));
  ExpectRefusedProbe("results", "carol", carol_get(req + "/results"));
  ExpectRefusedProbe("a result", "carol", carol_get(req + "/results/0"));
  ExpectRefusedProbe("audit trail", "carol", carol_get("/v1/audit?request=" + acme_id));
  // Another tenant's dataset is as unknown as one nobody has.
  const auto unknown = client_->Post(
      "/v1/requests", R"({"datasets":["no_such_data"],"purpose":"probe"})", Auth(kCarol));
  EXPECT_NE(unknown.body.find("unknown dataset(s): no_such_data"), std::string::npos)
      << unknown.body;
  for (const std::string dataset : {"acme_orders", "acme_customers"}) {
    ExpectRefusedProbe(
        "ask for " + dataset, "carol",
        [&] {
          const auto asked = client_->Post(
              "/v1/requests", json{{"datasets", {dataset}}, {"purpose", "probe"}}.dump(),
              Auth(kCarol));
          EXPECT_NE(asked.body.find("unknown dataset(s): " + dataset), std::string::npos)
              << asked.body;
          return asked.status;
        },
        unknown.status);
  }
  for (const auto& [tool, arguments] : std::vector<std::pair<std::string, json>>{
           {"request_status", {{"request_id", acme_id}}},
           {"list_tables", {{"request_id", acme_id}}},
           {"query", {{"request_id", acme_id}, {"sql", "SELECT count(*) FROM acme_orders"}}}}) {
    ExpectRefusedProbe("mcp " + tool, "carol", [&, tool = tool, arguments = arguments] {
      const json answer = Mcp(kCarol, tool, arguments);
      const bool refused = answer["result"].value("isError", false) &&
                           answer.dump().find("not found") != std::string::npos;
      return refused ? 404u : 200u;
    });
  }
  ExpectRefusedProbe("suspend", "dave", [&] {
    return client_->Post("/v1/agents/edge_a/suspend", R"({"reason":"x"})", Auth(kDave)).status;
  });
  ExpectRefusedProbe("resume", "dave", [&] {
    return client_->Post("/v1/agents/edge_a/resume", R"({"reason":"x"})", Auth(kDave)).status;
  });
  // An unknown id is answered the same way (and is no probe).
  EXPECT_EQ(client_->Get("/v1/requests/req_000000000000000000000000", Auth(kCarol)).status, 404u);
  // Nothing of acme's shows in globex's lists, searches or events, not
  // even to globex's admin; acme's request is untouched.
  auto ids = [&](const char* token, const std::string& query) {
    std::set<std::string> out;
    for (const json& r :
         client_->Get("/v1/requests" + query, Auth(token)).json().value("requests", json()))
      out.insert(r.value("id", ""));
    return out;
  };
  EXPECT_EQ(ids(kCarol, ""), std::set<std::string>{globex_id});
  EXPECT_EQ(ids(kDave, ""), std::set<std::string>{globex_id});
  EXPECT_EQ(ids(kBob, ""), std::set<std::string>{acme_id});
  EXPECT_EQ(ids(kRoot, ""), (std::set<std::string>{acme_id, globex_id}));
  EXPECT_TRUE(ids(kDave, "?awaiting=me").empty());
  const auto searched = client_->Get("/v1/audit?event=request.*&limit=500", Auth(kDave));
  ASSERT_EQ(searched.status, 200u) << searched.body;
  const json found = searched.json()["records"];
  ASSERT_FALSE(found.empty());
  for (const json& r : found) {
    EXPECT_EQ(r.value("tenant", ""), "globex") << r.dump();
  }
  EXPECT_EQ(searched.body.find(acme_id), std::string::npos);
  EXPECT_EQ(client_->Get("/v1/cluster", Auth(kDave)).status, 403u) << "the platform's alone";
  EXPECT_EQ(client_->Get("/v1/cluster", Auth(kRoot)).status, 200u);
  ExpectRefusedProbe("mcp describe_dataset", "carol", [&] {
    const json answer = Mcp(kCarol, "describe_dataset", {{"name", "acme_orders"}});
    const bool refused = answer["result"].value("isError", false) &&
                         answer.dump().find("no dataset named 'acme_orders'") != std::string::npos;
    return refused ? 404u : 200u;
  });
  ExpectRefusedProbe("mcp resources/read", "carol", [&] {
    const auto r =
        client_->Post("/mcp",
                      json{{"jsonrpc", "2.0"},
                           {"id", 2},
                           {"method", "resources/read"},
                           {"params", {{"uri", "airlock://datasets/acme_orders/schema"}}}}
                          .dump(),
                      Auth(kCarol));
    return r.json().contains("error") ? 404u : r.status;
  });
  carol_watch.Drain(std::chrono::milliseconds(300));
  const auto seen = carol_watch.RequestIds();
  EXPECT_NE(std::find(seen.begin(), seen.end(), globex_id), seen.end());
  EXPECT_EQ(std::find(seen.begin(), seen.end(), acme_id), seen.end())
      << "globex watched acme's request change";
  EXPECT_EQ(WaitForState(acme_id, kAlice, "ready"), "ready");

  // --- the audit: every record says its tenant -----------------------------
  bool kernel_wide = false;
  for (const json& r : Audit()) {
    ASSERT_TRUE(r.contains("tenant")) << r.dump();
    if (r.value("request_id", "") == acme_id) EXPECT_EQ(r["tenant"], "acme") << r.dump();
    if (r.value("request_id", "") == globex_id) EXPECT_EQ(r["tenant"], "globex") << r.dump();
    if (r.value("event", "") == "agent.catalog_synced") {
      EXPECT_EQ(r["tenant"], r.value("agent", "") == "edge_a" ? "acme" : "globex") << r.dump();
    }
    if (r.value("event", "") == "kernel.started") {
      kernel_wide = true;
      EXPECT_TRUE(r["tenant"].is_null()) << r.dump();
    }
  }
  EXPECT_TRUE(kernel_wide);

  // --- globex's admin suspends globex's site in the middle of a query ------
  ClientResponse grant;
  TunnelSession globex_tunnel =
      ConnectTunnel(*client_, globex_id, Auth(kCarol), pki_.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;
  TunnelSession acme_tunnel =
      ConnectTunnel(*client_, acme_id, Auth(kAlice), pki_.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;
  EXPECT_EQ(client_->Post("/v1/agents/edge_b/suspend", R"({"reason":"x"})", Auth(kCarol)).status,
            403u)
      << "a member who is no admin";
  ClientResponse suspended;
  const CutShortQuery slow = QueryCutShortBy(globex_tunnel, [&] {
    suspended = client_->Post("/v1/agents/edge_b/suspend",
                              R"({"reason":"globex audit in progress"})", Auth(kDave));
  });
  EXPECT_TRUE(slow.ran_until_act) << slow.answer.body;
  ASSERT_EQ(suspended.status, 200u) << suspended.body;
  EXPECT_LT(slow.ended_after, std::chrono::seconds(1));
  EXPECT_NE(slow.answer.status, 200u) << slow.answer.body;
  EXPECT_TRUE(WaitUntil([&] { return EnclaveChildren(site_b.pid()).empty(); }))
      << "the enclave outlived its site's suspension";
  const std::string refused =
      client_
          ->Post("/v1/requests", R"({"datasets":["globex_orders"],"purpose":"again"})",
                 Auth(kCarol))
          .body;
  EXPECT_NE(refused.find("globex audit in progress"), std::string::npos) << refused;
  // acme's site and request go on as before.
  EXPECT_TRUE(WaitUntil([&] { return EnclaveChildren(site_a.pid()).size() == 1; }));
  auto rows = TunnelQuery(acme_tunnel, "SELECT count(*) FROM acme_orders");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], 2);
  EXPECT_EQ(Catalog(kRoot).at("acme_orders")["site"].value("status", ""), "online");
  EXPECT_EQ(Catalog(kCarol).at("globex_orders")["site"].value("status", ""), "suspended");
  EXPECT_EQ(client_->Post("/v1/agents/edge_b/resume", R"({"reason":"x"})", Auth(kBob)).status, 404u)
      << "acme's admin resumed globex's site";

  // The suspension outlives a kernel restart (the agents link again).
  ASSERT_EQ(kernel_->Stop(), 0) << kernel_->log();
  StartKernel();
  ASSERT_TRUE(WaitUntil([&] {
    return AgentState("edge_a") == "online" && AgentState("edge_b") == "online";
  })) << site_a.log()
      << site_b.log();
  EXPECT_EQ(Ask(kCarol, "globex_orders", 403), "");
  // Resumed by its tenant's admin: asking works again.
  ASSERT_EQ(
      client_->Post("/v1/agents/edge_b/resume", R"({"reason":"audit closed"})", Auth(kDave)).status,
      200u);
  const std::string again = Ask(kCarol, "globex_orders");
  EXPECT_EQ(WaitForState(again, kCarol, "ready"), "ready");
  int acts = 0;
  for (const json& r : Audit()) {
    const std::string event = r.value("event", "");
    if (event != "agent.suspended" && event != "agent.resumed") continue;
    ++acts;
    EXPECT_EQ(r.value("tenant", ""), "globex") << r.dump();
    EXPECT_EQ(r["principal"].value("subject", ""), "dave") << r.dump();
  }
  EXPECT_EQ(acts, 2);
}

}  // namespace
}  // namespace airlock::test
