// Agents and kernel replicas: two real airlockd replicas on one PostgreSQL
// database share one agent CA (agents.ca_dir) and one enrollment book (the
// database), and a real airlock-agent that knows both addresses enrolls once,
// links with whichever answers, and moves to the survivor when its replica
// dies. A request for the agent's datasets is served by the replica the
// agent links with, wherever it was approved, and follows the agent when
// its link moves. A replica with another CA is refused at start.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

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
    return client.Get("/v1/agents", Auth(kPgBob)).json()["listen"].value("port", 0);
  }

  json AgentOn(KernelProcess& kernel) {
    HttpClient client("127.0.0.1", kernel.port());
    for (const json& a :
         client.Get("/v1/agents", Auth(kPgBob)).json().value("agents", json::array())) {
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

  // A request for the agent's dataset, made by alice and approved by bob
  // on `kernel`; its id, empty if either was refused.
  std::string AskAndApproveOn(KernelProcess& kernel) {
    HttpClient client("127.0.0.1", kernel.port());
    const json ask = {{"datasets", {"edge_orders"}}, {"window_seconds", 600}, {"purpose", "edge"}};
    auto created = client.Post("/v1/requests", ask.dump(), Auth(kPgAlice));
    EXPECT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    auto approved = client.Post("/v1/requests/" + id + "/approve", "{}", Auth(kPgBob));
    EXPECT_EQ(approved.status, 200u) << approved.body;
    return approved.status == 200 ? id : "";
  }

  // An agent configuration naming `kernels` (default: both replicas, A first).
  std::string AgentConfig(std::vector<KernelProcess*> kernels = {}) {
    if (kernels.empty()) kernels = {&a(), &b()};
    json addresses = json::array();
    for (KernelProcess* kernel : kernels) {
      addresses.push_back("127.0.0.1:" + std::to_string(AgentPort(*kernel)));
    }
    const std::string dir = agent_dir_.path();
    std::ofstream(dir + "/token") << kEnrollmentToken << "\n";
    ::chmod((dir + "/token").c_str(), 0600);
    const json config = {
        {"name", "edge"},
        {"kernel",
         {{"addresses", addresses},
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
  const std::string id = AskAndApproveOn(b());
  ASSERT_FALSE(id.empty());
  const json view = WaitReadyOn(b(), id, ReplicaId(b()), std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump() << b().log();
  EXPECT_EQ(view["enclave"].value("agent", ""), "edge");
  auto collected = on_b.Post("/v1/requests/" + id + "/credentials", "", Auth(kPgAlice));
  ASSERT_EQ(collected.status, 200u) << collected.body;
  EXPECT_EQ(Query(collected.json(), pkis_[1], "edge_orders"), 200u);
  // The enclave runs under the agent, not under either kernel.
  EXPECT_EQ(EnclaveChildren(agent.pid()).size(), 1u);
  EXPECT_EQ(agent.log().find(kEnrollmentToken), std::string::npos);
}

// The replicas linked by the peer link, and the agent linked with one of
// them only: a request for its datasets is served by that replica wherever
// it was approved, and moves with the agent's link.
class AgentHandoverTest : public AgentReplicasTest {
 protected:
  void Prepare(int index, json& config, const std::string& dir) override {
    AgentReplicasTest::Prepare(index, config, dir);
    const std::string file = dir + "/peer.secret";
    std::ofstream(file) << "peer-secret-agent-handover-93a1";
    ::chmod(file.c_str(), 0600);
    config["state"]["peer"] = {{"secret", "file:" + file}};
  }
  bool PeerLinked() const override { return true; }

  // Waits until the shared state says the agent links with `kernel`.
  bool WaitLinkRecorded(KernelProcess& kernel, std::chrono::seconds timeout) {
    const std::string replica = ReplicaId(kernel);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto rows = PgCluster::Shared().Query(
          "SELECT replica_id FROM agent_links WHERE agent = 'edge'", database_);
      if (!rows.empty() && rows.at(0).at(0) == replica) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // The request's hand-overs, in audit order: "<from>-><to>".
  std::vector<std::string> HandOvers(const std::string& id) {
    std::vector<std::string> moves;
    for (const json& e : AuditOf(id)) {
      if (e.value("agent", "") == "edge" && e.contains("to_replica")) {
        moves.push_back(e.value("from_replica", "") + "->" + e.value("to_replica", ""));
      }
    }
    return moves;
  }

  // Polls a query through `kernel`'s tunnel until it answers 200.
  unsigned QueryThrough(const json& grant, int index, const std::string& id,
                        std::chrono::seconds timeout) {
    unsigned status = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      status = Query(Through(grant, *kernels_[index], id), pkis_[index], "edge_orders");
      if (status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return status;
  }
};

TEST_F(AgentHandoverTest, ARequestIsServedByTheReplicaItsAgentLinksWithAndMovesWithTheLink) {
  const std::string id_a = ReplicaId(a()), id_b = ReplicaId(b());
  auto agent =
      std::make_unique<AgentProcess>(AgentConfig({&a()}), agent_dir_.path() + "/agent.log");
  ASSERT_TRUE(agent->Start());
  ASSERT_TRUE(WaitOnline(a(), std::chrono::seconds(30))) << agent->log() << a().log();
  ASSERT_TRUE(WaitLinkRecorded(a(), std::chrono::seconds(10))) << a().log();

  // Asked and approved on B, which has no link with the agent: A serves it.
  HttpClient on_b("127.0.0.1", b().port());
  const std::string id = AskAndApproveOn(b());
  ASSERT_FALSE(id.empty());
  json view = WaitReadyOn(b(), id, id_a, std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump() << agent->log();
  ASSERT_EQ(view["enclave"].value("owner", ""), id_a) << view.dump() << b().log();
  EXPECT_EQ(view["enclave"].value("agent", ""), "edge");
  EXPECT_EQ(HandOvers(id), std::vector<std::string>{id_b + "->" + id_a});
  auto collected = on_b.Post("/v1/requests/" + id + "/credentials", "", Auth(kPgAlice));
  ASSERT_EQ(collected.status, 200u) << collected.body;
  const json grant = collected.json();
  EXPECT_EQ(QueryThrough(grant, 0, id, std::chrono::seconds(10)), 200u);
  EXPECT_EQ(QueryThrough(grant, 1, id, std::chrono::seconds(10)), 200u);
  EXPECT_EQ(EnclaveChildren(agent->pid()).size(), 1u);

  // The agent now links with B only (its enclaves went with its old link):
  // A hands the request to B, which provisions it again on the agent, and
  // the same credential keeps working through either replica.
  ASSERT_EQ(agent->Stop(), 0) << agent->log();
  agent = std::make_unique<AgentProcess>(AgentConfig({&b()}), agent_dir_.path() + "/agent2.log");
  ASSERT_TRUE(agent->Start());
  ASSERT_TRUE(WaitOnline(b(), std::chrono::seconds(30))) << agent->log() << b().log();
  view = WaitReadyOn(a(), id, id_b, std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump() << a().log() << b().log();
  ASSERT_EQ(view["enclave"].value("owner", ""), id_b) << view.dump() << a().log();
  EXPECT_EQ(HandOvers(id), (std::vector<std::string>{id_b + "->" + id_a, id_a + "->" + id_b}));
  EXPECT_EQ(QueryThrough(grant, 1, id, std::chrono::seconds(10)), 200u);
  EXPECT_EQ(QueryThrough(grant, 0, id, std::chrono::seconds(10)), 200u);
  EXPECT_EQ(EnclaveChildren(agent->pid()).size(), 1u);
  // Exactly one enclave per provisioning: the first on A, the second on B.
  int provisioned = 0;
  for (const json& e : AuditOf(id)) provisioned += e.value("event", "") == "enclave.provisioned";
  EXPECT_EQ(provisioned, 2);
}

// A site that owns its datasets, on replicas: what it syncs through its link
// with one replica is known to the other (through the state store), and a
// suspension made on either closes the site's requests wherever they are
// served and refuses asks on both, until resumed.
class SiteReplicasTest : public AgentHandoverTest {
 protected:
  void Prepare(int index, json& config, const std::string& dir) override {
    AgentHandoverTest::Prepare(index, config, dir);
    config["policy"]["config"]["rules"][0]["datasets"].push_back("site_orders");
  }

  // The agent's configuration with a dataset of its own, served from its
  // host's files.
  std::string SiteAgentConfig(KernelProcess& kernel) {
    const std::string path = AgentConfig({&kernel});
    const std::string data = agent_dir_.path() + "/site-data";
    std::filesystem::create_directories(data);
    std::ofstream(data + "/orders.csv") << "id,amount\n1,10\n2,20\n";
    json config = json::parse(std::ifstream(path));
    config["connectors"] = {
        {"site_files",
         {{"plugin", PluginPath("airlock_connector_files")}, {"config", {{"root", data}}}}}};
    config["datasets"] = {
        {{"name", "site_orders"}, {"connector", "site_files"}, {"object", "orders.csv"}}};
    std::ofstream(path, std::ios::trunc) << config.dump(2);
    return path;
  }

  static bool Lists(KernelProcess& kernel, const std::string& dataset) {
    HttpClient client("127.0.0.1", kernel.port());
    for (const json& d :
         client.Get("/v1/catalog", Auth(kPgAlice)).json().value("datasets", json::array())) {
      if (d.value("name", "") == dataset) return true;
    }
    return false;
  }

  static ClientResponse Ask(KernelProcess& kernel) {
    HttpClient client("127.0.0.1", kernel.port());
    return client.Post("/v1/requests",
                       json{{"datasets", {"site_orders"}}, {"purpose", "site"}}.dump(),
                       Auth(kPgAlice));
  }
};

TEST_F(SiteReplicasTest, ASitesDatasetsAndItsSuspensionHoldOnEveryReplica) {
  const std::string id_a = ReplicaId(a());
  auto agent =
      std::make_unique<AgentProcess>(SiteAgentConfig(a()), agent_dir_.path() + "/agent.log");
  ASSERT_TRUE(agent->Start());
  ASSERT_TRUE(WaitOnline(a(), std::chrono::seconds(30))) << agent->log() << a().log();
  ASSERT_TRUE(WaitLinkRecorded(a(), std::chrono::seconds(10))) << a().log();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!Lists(b(), "site_orders") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(Lists(b(), "site_orders")) << "B never learnt the site's dataset\n" << agent->log();

  // Asked and approved on B, served by A (which holds the link).
  auto created = Ask(b());
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  HttpClient on_b("127.0.0.1", b().port());
  ASSERT_EQ(on_b.Post("/v1/requests/" + id + "/approve", "{}", Auth(kPgBob)).status, 200u);
  const json view = WaitReadyOn(b(), id, id_a, std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump() << agent->log() << a().log();
  EXPECT_EQ(EnclaveChildren(agent->pid()).size(), 1u);

  // Suspended on B: A closes what it serves there and destroys the enclave.
  auto suspended =
      on_b.Post("/v1/agents/edge/suspend", R"({"reason":"audit of the east site"})", Auth(kPgBob));
  ASSERT_EQ(suspended.status, 200u) << suspended.body;
  EXPECT_EQ(suspended.json()["closed_requests"], json::array({id})) << suspended.body;
  const auto gone = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!EnclaveChildren(agent->pid()).empty() && std::chrono::steady_clock::now() < gone) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(EnclaveChildren(agent->pid()).empty()) << "A kept the suspended site's enclave";
  for (KernelProcess* kernel : {&a(), &b()}) {
    auto refused = Ask(*kernel);
    EXPECT_EQ(refused.status, 403u) << refused.body;
    EXPECT_NE(refused.body.find("audit of the east site"), std::string::npos) << refused.body;
  }

  // Resumed on A: asks work on both again.
  HttpClient on_a("127.0.0.1", a().port());
  ASSERT_EQ(
      on_a.Post("/v1/agents/edge/resume", R"({"reason":"audit closed"})", Auth(kPgBob)).status,
      200u);
  EXPECT_EQ(Ask(b()).status, 201u);
  EXPECT_EQ(Ask(a()).status, 201u);
}

// A one-machine kernel (SQLite) whose agent enrolled there becomes a
// replica: its enrollments move into the database at start, so the agent
// links with the replicas without enrolling again (its token is gone).
TEST_F(AgentReplicasTest, AOneMachineKernelTurnedReplicaKeepsItsAgentsEnrolled) {
  TempDir dir("airlock-agent-one-machine-");
  pkis_.push_back(GenerateTestPki(dir.path()));
  auto config_for = [&](bool replica) {
    json config = PgKernelConfig(dir.path(), pkis_.back(), PgCluster::Shared());
    Prepare(2, config, dir.path());
    if (!replica) config["state"] = {{"backend", "sqlite"}};
    return config;
  };
  const std::string enrollments = dir.path() + "/state/agents/enrollments.json";
  {
    KernelProcess single(dir.path(), config_for(false));
    ASSERT_TRUE(single.Start()) << single.log();
    AgentProcess agent(AgentConfig({&single}), agent_dir_.path() + "/agent.log");
    ASSERT_TRUE(agent.Start());
    ASSERT_TRUE(WaitOnline(single, std::chrono::seconds(30))) << agent.log() << single.log();
    EXPECT_EQ(agent.Stop(), 0);
    EXPECT_EQ(single.Stop(), 0) << single.log();
  }
  ASSERT_TRUE(std::filesystem::exists(enrollments));
  const json before = json::parse(std::ifstream(enrollments));
  const std::string serial = before["edge"].value("serial", "");
  ASSERT_FALSE(serial.empty()) << before.dump();

  WriteDsn(dir.path(), PgCluster::Shared(), database_);
  KernelProcess replica(dir.path(), config_for(true));
  ASSERT_TRUE(replica.Start()) << replica.log();
  const auto rows = PgCluster::Shared().Query(
      "SELECT serial, token_sha256 FROM agent_enrollments WHERE agent = 'edge'", database_);
  ASSERT_EQ(rows.size(), 1u) << replica.log();
  EXPECT_EQ(rows.at(0).at(0), serial);
  EXPECT_EQ(rows.at(0).at(1), before["edge"].value("token_sha256", ""));
  EXPECT_FALSE(std::filesystem::exists(enrollments));
  EXPECT_TRUE(std::filesystem::exists(enrollments + ".imported"));
  const auto audited = PgCluster::Shared().Query(
      "SELECT count(*) FROM audit_records WHERE line LIKE '%agent.enrollments_imported%'",
      database_);
  EXPECT_EQ(audited.at(0).at(0), "1");

  // No token any more: the agent links with its certificate alone, with the
  // new replica and, the book being shared, with A.
  const std::string config = AgentConfig({&replica, &a()});
  std::filesystem::remove(agent_dir_.path() + "/token");
  AgentProcess agent(config, agent_dir_.path() + "/agent2.log");
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitOnline(replica, std::chrono::seconds(30))) << agent.log() << replica.log();
  EXPECT_EQ(agent.log().find("enrolled with the kernel"), std::string::npos) << agent.log();
  replica.Kill();
  EXPECT_TRUE(WaitOnline(a(), std::chrono::seconds(30))) << agent.log() << a().log();
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
