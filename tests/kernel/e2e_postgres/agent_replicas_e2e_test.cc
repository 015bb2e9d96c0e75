// Agents and kernel replicas: two real airlockd replicas on one PostgreSQL
// database share one agent CA (agents.ca_dir) and one enrollment book (the
// database), and a real airlock-agent that knows both addresses enrolls once,
// links with whichever answers, and moves to the survivor when its replica
// dies. A replica with another CA is refused at start.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/kernel/e2e_agent/agent_process.h"
#include "tests/kernel/e2e_postgres/failover_fixture.h"

namespace airlock::test {
namespace {

constexpr const char* kEnrollmentToken = "enroll-replicas-4c1d9e7a";
const json kMinIsolation = {"pid_namespace", "network_namespace", "no_new_privs"};

class AgentReplicasTest : public FailoverTest {
 protected:
  void Prepare(int index, json& config, const std::string& dir) override {
    config["agents"] = {
        {"listen_address", "127.0.0.1"},
        {"port", 0},
        {"ca_dir", ca_dir_.path()},
        {"heartbeat_interval_ms", 200},
        {"offline_after_ms", 2000},
        {"agents", {{"edge", {{"enrollment_token_sha256", Sha256HexOf(kEnrollmentToken)}}}}}};
    config["connectors"]["edge_files"] = {{"plugin", PluginPath("airlock_connector_files")},
                                          {"agent", "edge"},
                                          {"config", {{"root", dir + "/data"}}}};
    config["datasets"].push_back(
        {{"name", "edge_orders"}, {"connector", "edge_files"}, {"object", "orders.csv"}});
    config["policy"]["config"]["rules"][0]["datasets"].push_back("edge_orders");
    if (index == 0) state_dirs_.clear();
    state_dirs_.push_back(dir + "/state");
  }

  static uint16_t AgentPort(KernelProcess& kernel) {
    HttpClient client("127.0.0.1", kernel.port());
    return client.Get("/v1/agents", PgAuth(kPgBob)).json()["listen"].value("port", 0);
  }

  json AgentOn(KernelProcess& kernel) {
    HttpClient client("127.0.0.1", kernel.port());
    for (const json& a :
         client.Get("/v1/agents", PgAuth(kPgBob)).json().value("agents", json::array())) {
      if (a.value("name", "") == "edge") return a;
    }
    return json::object();
  }

  bool WaitOnline(KernelProcess& kernel, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (AgentOn(kernel).value("status", "") == "online") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // An agent configuration naming both replicas, A first.
  std::string AgentConfig() {
    const std::string dir = agent_dir_.path();
    std::ofstream(dir + "/token") << kEnrollmentToken << "\n";
    ::chmod((dir + "/token").c_str(), 0600);
    const json config = {
        {"name", "edge"},
        {"kernel",
         {{"addresses",
           {"127.0.0.1:" + std::to_string(AgentPort(a())),
            "127.0.0.1:" + std::to_string(AgentPort(b()))}},
          {"server_name", "127.0.0.1"},
          {"ca_file", ca_dir_.path() + "/ca.crt"}}},
        {"state_dir", dir + "/state"},
        {"enrollment_token_file", dir + "/token"},
        {"reconnect_ms", 100},
        {"isolator",
         {{"plugin", PluginPath("airlock_isolator_process")},
          {"config", {{"state_dir", dir + "/enclaves"}, {"min_isolation", kMinIsolation}}}}}};
    std::ofstream(dir + "/agent.json") << config.dump(2);
    return dir + "/agent.json";
  }

  TempDir ca_dir_{"airlock-agent-ca-"};
  TempDir agent_dir_{"airlock-agent-replicas-"};
  std::vector<std::string> state_dirs_;
};

TEST_F(AgentReplicasTest, AnAgentEnrollsOnceAndLinksWithWhicheverReplicaIsAlive) {
  AgentProcess agent(AgentConfig(), agent_dir_.path() + "/agent.log");
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitOnline(a(), std::chrono::seconds(30))) << agent.log() << a().log();
  // One enrollment, in the database every replica reads; no replica keeps
  // a file of its own, and both replicas use the one CA.
  const auto rows = PgCluster::Shared().Query(
      "SELECT count(*), min(serial) <> '' FROM agent_enrollments WHERE agent = 'edge'", database_);
  EXPECT_EQ(rows.at(0).at(0), "1");
  EXPECT_EQ(rows.at(0).at(1), "t");
  for (const std::string& dir : state_dirs_) {
    EXPECT_FALSE(std::filesystem::exists(dir + "/agents/enrollments.json")) << dir;
    EXPECT_FALSE(std::filesystem::exists(dir + "/agents/ca.key")) << dir;
  }
  EXPECT_EQ(AgentOn(b()).value("status", ""), "never_connected");

  // A dies: the agent dials B, whose link accepts the certificate A's
  // replica issued, and B provisions the agent's enclaves from then on.
  a().Kill();
  ASSERT_TRUE(WaitOnline(b(), std::chrono::seconds(30))) << agent.log() << b().log();
  HttpClient on_b("127.0.0.1", b().port());
  const json ask = {{"datasets", {"edge_orders"}}, {"window_seconds", 600}, {"purpose", "edge"}};
  auto created = on_b.Post("/v1/requests", ask.dump(), PgAuth(kPgAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(on_b.Post("/v1/requests/" + id + "/approve", "{}", PgAuth(kPgBob)).status, 200u);
  const json view = WaitReadyOn(b(), id, ReplicaId(b()), std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump() << b().log();
  EXPECT_EQ(view["enclave"].value("agent", ""), "edge");
  auto collected = on_b.Post("/v1/requests/" + id + "/credentials", "", PgAuth(kPgAlice));
  ASSERT_EQ(collected.status, 200u) << collected.body;
  EXPECT_EQ(Query(collected.json(), pkis_[1], "edge_orders"), 200u);
  // The enclave runs under the agent, not under either kernel.
  EXPECT_EQ(EnclaveChildren(agent.pid()).size(), 1u);
  EXPECT_EQ(agent.log().find(kEnrollmentToken), std::string::npos);
}

// A replica whose agent CA is not the one the others use would issue
// certificates the others refuse: it does not start.
TEST_F(AgentReplicasTest, AReplicaWithAnotherAgentCaIsRefused) {
  TempDir dir("airlock-agent-other-ca-");
  pkis_.push_back(GenerateTestPki(dir.path()));
  WriteDsn(dir.path(), PgCluster::Shared(), database_);
  json config = PgKernelConfig(dir.path(), pkis_.back(), PgCluster::Shared());
  Prepare(2, config, dir.path());
  config["agents"]["ca_dir"] = dir.path() + "/own-ca";
  KernelProcess other(dir.path(), config);
  EXPECT_FALSE(other.Start());
  EXPECT_NE(other.log().find("is not the one the other replicas use"), std::string::npos)
      << other.log();
}

}  // namespace
}  // namespace airlock::test
