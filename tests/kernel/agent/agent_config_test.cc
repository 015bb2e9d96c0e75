// The configuration keys of agents, on the kernel's side (agents section,
// connector binding) and the agent's own file.
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/agent_main/agent_config.h"
#include "kernel/agent_main/proxy_connect.h"
#include "kernel/agent_main/site_specs.h"
#include "kernel/core/config.h"
#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using nlohmann::json;

const std::string kHash(64, 'a');

json KernelDoc() {
  return json::parse(R"({
    "identity": [{"plugin": "id.so"}],
    "policy": {"plugin": "policy.so"},
    "isolator": {"plugin": "iso"},
    "tunnel": {"plugin": "tunnel.so"},
    "connectors": {"files": {"plugin": "files.so"},
                   "edge": {"plugin": "files.so", "agent": "dc-east"},
                   "west": {"plugin": "files.so", "agent": "dc-west"}},
    "datasets": [{"name": "local", "connector": "files"},
                 {"name": "east_a", "connector": "edge"},
                 {"name": "east_b", "connector": "edge"},
                 {"name": "west", "connector": "west"}],
    "agents": {"agents": {"dc-east": {"enrollment_token_sha256": ""},
                          "dc-west": {"enrollment_token_sha256": ""}}}
  })");
}

json WithHashes(json doc) {
  for (auto& [name, agent] : doc["agents"]["agents"].items())
    agent["enrollment_token_sha256"] = kHash;
  return doc;
}

std::string ErrorFor(const json& doc) {
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/plugins");
  return parsed.ok() ? std::string("ok") : parsed.status().message();
}

TEST(AgentsConfig, DefaultsAndBinding) {
  auto parsed = ParseKernelConfig(WithHashes(KernelDoc()), "/etc/airlock/airlock.json", "/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const AgentsConfig& a = parsed->agents;
  EXPECT_TRUE(a.enabled);
  EXPECT_EQ(a.listen_address, "127.0.0.1");
  EXPECT_EQ(a.port, 7443);
  EXPECT_EQ(a.server_names, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(a.state_dir, "/etc/airlock/state/agents");
  EXPECT_EQ(a.certificate_lifetime_seconds, 86400);
  ASSERT_EQ(a.agents.size(), 2u);
  EXPECT_EQ(a.agents.at("dc-east").enrollment_token_sha256, kHash);
  EXPECT_EQ(parsed->connectors.at("edge").agent, "dc-east");
  EXPECT_TRUE(parsed->connectors.at("files").agent.empty());
  // Without the section, agents are off.
  json plain = KernelDoc();
  plain.erase("agents");
  plain["connectors"].erase("edge");
  plain["connectors"].erase("west");
  plain["datasets"] = json::array({{{"name", "local"}, {"connector", "files"}}});
  auto off = ParseKernelConfig(plain, "/etc/airlock/airlock.json", "/plugins");
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_FALSE(off->agents.enabled);
}

TEST(AgentsConfig, ErrorsNameTheKey) {
  json doc = WithHashes(KernelDoc());
  doc["connectors"]["edge"]["agent"] = "nowhere";
  EXPECT_NE(ErrorFor(doc).find("connectors.edge.agent names unknown agent 'nowhere'"),
            std::string::npos)
      << ErrorFor(doc);

  doc = WithHashes(KernelDoc());
  doc["agents"]["agents"]["dc-east"]["enrollment_token_sha256"] = "the-token-itself";
  EXPECT_NE(ErrorFor(doc).find("agents.agents.dc-east.enrollment_token_sha256"), std::string::npos)
      << ErrorFor(doc);

  doc = WithHashes(KernelDoc());
  doc["agents"]["agents"]["bad name!"] = {{"enrollment_token_sha256", kHash}};
  EXPECT_NE(ErrorFor(doc).find("agent names are"), std::string::npos) << ErrorFor(doc);

  doc = WithHashes(KernelDoc());
  doc["agents"]["offline_after_ms"] = 1000;
  doc["agents"]["heartbeat_interval_ms"] = 1000;
  EXPECT_NE(ErrorFor(doc).find("offline_after_ms"), std::string::npos) << ErrorFor(doc);

  doc = WithHashes(KernelDoc());
  doc["agents"]["certificate_lifetime_seconds"] = 1;
  EXPECT_NE(ErrorFor(doc).find("agents.certificate_lifetime_seconds"), std::string::npos);

  doc = WithHashes(KernelDoc());
  doc["agents"]["on_api_port"] = true;
  EXPECT_NE(ErrorFor(doc).find("agents.on_api_port needs server.tls"), std::string::npos)
      << ErrorFor(doc);
  doc["server"]["tls"] = {{"certificate_file", "api.crt"}, {"private_key_file", "api.key"}};
  EXPECT_EQ(ErrorFor(doc), "ok");

  doc = WithHashes(KernelDoc());
  doc["agents"]["listen"] = "typo";
  EXPECT_NE(ErrorFor(doc).find("agents.listen is not a known setting"), std::string::npos);

  doc = WithHashes(KernelDoc());
  doc["agents"]["agents"] = json::object();
  EXPECT_NE(ErrorFor(doc).find("agents.agents"), std::string::npos);
}

TEST(AgentsConfig, OneRequestRunsOnOneHost) {
  auto parsed = ParseKernelConfig(WithHashes(KernelDoc()), "/etc/airlock/airlock.json", "/plugins");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*AgentForDatasets(*parsed, {"local"}), "");
  EXPECT_EQ(*AgentForDatasets(*parsed, {"east_a", "east_b"}), "dc-east");
  auto mixed = AgentForDatasets(*parsed, {"east_a", "local"});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mixed.status().message().find("agent 'dc-east'"), std::string::npos);
  EXPECT_FALSE(AgentForDatasets(*parsed, {"east_a", "west"}).ok());
}

// Replicas: the agent takes every replica's listener and dials them in turn.
TEST(AgentFileConfig, TakesAListOfKernelAddresses) {
  test::TempDir dir("airlock-agent-config-");
  const std::string path = dir.path() + "/agent.json";
  const auto load = [&](const std::string& kernel) {
    std::ofstream(path, std::ios::trunc)
        << R"({"name": "dc-east", "kernel": )" << kernel
        << R"(, "state_dir": "s", "isolator": {"plugin": "i.so"}})";
    return agent::LoadAgentConfig(path);
  };
  auto parsed = load(
      R"({"addresses": ["k1.example:7443", "10.0.0.2:8443", "[fd00::3]:9443"], "ca_file": "ca"})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->kernels.size(), 3u);
  EXPECT_EQ(parsed->kernels[0].host, "k1.example");
  EXPECT_EQ(parsed->kernels[0].server_name, "k1.example");
  EXPECT_EQ(parsed->kernels[1].port, 8443);
  EXPECT_EQ(parsed->kernels[2].host, "fd00::3");
  EXPECT_EQ(parsed->kernels[2].ToString(), "[fd00::3]:9443");
  // One certificate name for every replica, when they share it.
  parsed = load(R"({"addresses": ["10.0.0.1:7443", "10.0.0.2:7443"], "server_name": "kernel",
                   "ca_file": "ca"})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->kernels[1].server_name, "kernel");

  for (const char* bad :
       {R"({"addresses": [], "ca_file": "ca"})", R"({"addresses": "k:1", "ca_file": "ca"})",
        R"({"addresses": ["k"], "ca_file": "ca"})", R"({"addresses": ["k:0"], "ca_file": "ca"})",
        R"({"addresses": ["k:65536"], "ca_file": "ca"})",
        R"({"addresses": ["fd00::3:9443"], "ca_file": "ca"})",
        R"({"addresses": [":7443"], "ca_file": "ca"})", R"({"addresses": [7443], "ca_file": "ca"})",
        R"({"addresses": ["k:1"], "address": "k", "ca_file": "ca"})"}) {
    auto refused = load(bad);
    EXPECT_FALSE(refused.ok()) << bad;
    if (!refused.ok()) {
      EXPECT_NE(refused.status().message().find("kernel."), std::string::npos)
          << refused.status().message();
    }
  }
}

TEST(AgentFileConfig, AForwardProxyIsAnHttpUrlWithCredentialsByReference) {
  test::TempDir dir("airlock-agent-config-");
  const std::string path = dir.path() + "/agent.json";
  const auto load = [&](const std::string& proxy) {
    std::ofstream(path, std::ios::trunc)
        << R"({"name": "dc-east", "kernel": {"address": "k", "ca_file": "ca", )" << proxy
        << R"(}, "state_dir": "s", "isolator": {"plugin": "i.so"}})";
    return agent::LoadAgentConfig(path);
  };
  auto parsed = load(R"("https_proxy": "http://proxy.corp:3128",
                        "proxy_credentials": "file:/etc/airlock/proxy.auth")");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->https_proxy, "http://proxy.corp:3128");
  EXPECT_EQ(parsed->proxy_credentials, "file:/etc/airlock/proxy.auth");
  for (const char* bad : {R"("https_proxy": "https://proxy.corp:3128")",
                          R"("https_proxy": "http://user:pw@proxy.corp:3128")",
                          R"("https_proxy": "http://proxy.corp:99999")",
                          R"("https_proxy": "http://proxy.corp:3128/path")",
                          R"("proxy_credentials": "env:PROXY_AUTH")",
                          R"("https_proxy": "http://p:1", "proxy_credentials": "user:pw")"}) {
    auto refused = load(bad);
    EXPECT_FALSE(refused.ok()) << bad;
    if (!refused.ok()) {
      EXPECT_NE(refused.status().message().find("kernel."), std::string::npos)
          << refused.status().message();
      EXPECT_EQ(refused.status().message().find("pw"), std::string::npos)
          << "credentials quoted: " << refused.status().message();
    }
  }
}

TEST(AgentProxy, TheConnectRequestAndTheProxysAnswer) {
  EXPECT_EQ(agent::ConnectRequest("kernel.corp", 7443, ""),
            "CONNECT kernel.corp:7443 HTTP/1.1\r\nHost: kernel.corp:7443\r\n\r\n");
  // RFC 7617: base64 of "user:password".
  EXPECT_EQ(agent::ConnectRequest("fd00::1", 7443, "agent:s3cret"),
            "CONNECT [fd00::1]:7443 HTTP/1.1\r\nHost: [fd00::1]:7443\r\n"
            "Proxy-Authorization: Basic YWdlbnQ6czNjcmV0\r\n\r\n");
  EXPECT_TRUE(agent::CheckConnectReply("HTTP/1.1 200 Connection established\r\n\r\n", "p").ok());
  EXPECT_TRUE(agent::CheckConnectReply("HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n", "p").ok());
  const Status refused =
      agent::CheckConnectReply("HTTP/1.0 407 Proxy Authentication Required\r\n\r\n", "p:3128");
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("p:3128"), std::string::npos);
  EXPECT_NE(refused.message().find("407 Proxy Authentication Required"), std::string::npos);
  EXPECT_FALSE(agent::CheckConnectReply("SSH-2.0-OpenSSH\r\n\r\n", "p").ok());
  EXPECT_FALSE(agent::CheckConnectReply("", "p").ok());
}

TEST(AgentFileConfig, ParsesAndResolvesRelativePaths) {
  test::TempDir dir("airlock-agent-config-");
  const std::string path = dir.path() + "/agent.json";
  std::ofstream(path) << R"({"name": "dc-east",
    "kernel": {"address": "kernel.example", "port": 9443, "ca_file": "ca.crt"},
    "state_dir": "state", "enrollment_token_file": "token",
    "isolator": {"plugin": "/plugins/iso.so", "config": {"state_dir": "x"}}})";
  auto parsed = agent::LoadAgentConfig(path);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->kernels.size(), 1u);
  EXPECT_EQ(parsed->kernels[0].host, "kernel.example");
  EXPECT_EQ(parsed->kernels[0].server_name, "kernel.example");
  EXPECT_EQ(parsed->kernels[0].port, 9443);
  EXPECT_EQ(parsed->ca_file, dir.path() + "/ca.crt");
  EXPECT_EQ(parsed->state_dir, dir.path() + "/state");
  EXPECT_EQ(parsed->enrollment_token_file, dir.path() + "/token");
  EXPECT_EQ(parsed->isolator_config.value("$config_dir", ""), dir.path());

  std::ofstream(path) << R"({"name": "dc-east", "kernel": {"address": "k", "ca_file": "ca"},
    "state_dir": "s", "isolator": {"plugin": "i.so"}, "listen_port": 1})";
  auto refused = agent::LoadAgentConfig(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("listen_port is not a known setting"),
            std::string::npos);
  std::ofstream(path) << R"({"name": "dc-east", "state_dir": "s", "isolator": {"plugin": "i.so"}})";
  EXPECT_NE(agent::LoadAgentConfig(path).status().message().find("kernel is required"),
            std::string::npos);
}

// A site's own datasets: written as in the kernel's configuration, checked
// the same way, and completed into what the kernel sends for them.
TEST(AgentFileConfig, ASitesOwnConnectorsAndDatasets) {
  test::TempDir dir("airlock-agent-config-");
  const std::string path = dir.path() + "/agent.json";
  const auto load = [&](const std::string& site) {
    std::ofstream(path, std::ios::trunc)
        << R"({"name": "dc-east", "kernel": {"address": "k", "ca_file": "ca"},
              "state_dir": "s", "isolator": {"plugin": "i.so"}, )"
        << site << "}";
    return agent::LoadAgentConfig(path);
  };
  auto parsed =
      load(R"("connectors": {"pg": {"plugin": "conn/pg.so", "egress": ["db.internal:5432"],
                          "config": {"password": "env:PG_PASSWORD", "ca_file": "pg-ca.crt"}}},
                        "datasets": [{"name": "orders", "connector": "pg", "object": "public.orders",
                                      "key": ["region", "id"]}],
                        "sync_interval_seconds": 60)");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->sync_interval_seconds, 60);
  ASSERT_EQ(parsed->site.datasets.size(), 1u);
  EXPECT_EQ(parsed->site.connectors.at("pg").path, dir.path() + "/conn/pg.so");

  // What the kernel sends for a request over it is completed here.
  agent::SiteSpecs site(parsed->site, parsed->config_dir, /*egress_forwarded=*/true);
  json isolator = {
      {"request_id", "r1"}, {"site_datasets", {"orders"}}, {"read_paths", json::array()}};
  auto endpoints = site.CompleteIsolatorSpec(isolator);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status().ToString();
  EXPECT_EQ(*endpoints, std::set<std::string>{"db.internal:5432"});
  EXPECT_EQ(isolator["secret_env"], json::array({"PG_PASSWORD"}));
  EXPECT_EQ(isolator["read_paths"],
            json::array({dir.path() + "/conn/pg.so", dir.path() + "/pg-ca.crt"}));
  EXPECT_EQ(isolator["egress"].size(), 1u);
  const json kernel_spec = {{"request_id", "r1"},
                            {"datasets",
                             {{{"name", "orders"},
                               {"connector", {{"site", "dc-east"}}},
                               {"pull", {{"dataset", "orders"}, {"scope", json::object()}}}}}},
                            {"egress", json::array()}};
  auto completed = site.CompleteEnclaveSpec(kernel_spec.dump());
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  const json spec = json::parse(*completed);
  EXPECT_EQ(spec["datasets"][0]["connector"].value("path", ""), dir.path() + "/conn/pg.so");
  EXPECT_EQ(spec["datasets"][0]["pull"].value("object", ""), "public.orders");
  // The key the site declares goes into the enclave's spec (the enclave
  // stores the table in its order) and into the catalog the kernel shows.
  EXPECT_EQ(spec["datasets"][0]["key"], json::array({"region", "id"}));
  EXPECT_EQ(site.CatalogDocument(json::object(), 1)["datasets"][0]["key"],
            json::array({"region", "id"}));
  EXPECT_EQ(spec["egress"].size(), 1u);
  json unknown = {{"site_datasets", {"payroll"}}};
  EXPECT_FALSE(site.CompleteIsolatorSpec(unknown).ok()) << "a dataset this site does not own";

  for (const auto& [bad, message] : std::vector<std::pair<std::string, std::string>>{
           {R"("connectors": {"pg": {"plugin": "pg.so", "agent": "x"}}, "datasets": [])",
            "run on its own host"},
           {R"("connectors": {"pg": {"plugin": "pg.so"}},
               "datasets": [{"name": "o", "connector": "nope"}])",
            "unknown connector 'nope'"},
           {R"("datasets": [{"name": "o", "connector": "pg"}])", "connectors must be an object"},
           {R"("connectors": {"pg": {"plugin": "pg.so"}},
               "datasets": [{"name": "bad name", "connector": "pg"}])",
            "must be an identifier"},
           {R"("connectors": {"pg": {"plugin": "pg.so"}},
               "datasets": [{"name": "o", "connector": "pg", "key": ["id", "id"]}])",
            "datasets[0].key names 'id' twice"},
           {R"("connectors": {"pg": {"plugin": "pg.so"}},
               "datasets": [{"name": "o", "connector": "pg", "key": ["x"],
                             "columns": [{"name": "id"}]}])",
            "datasets[0].key names 'x', which is not one of its columns"},
           {R"("sync_interval_seconds": 0)", "sync_interval_seconds"}}) {
    auto refused = load(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find(message), std::string::npos)
        << refused.status().message();
  }
}

}  // namespace
}  // namespace airlock
