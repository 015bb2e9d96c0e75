// The reverse tunnel as it runs in production: a real airlockd and a real
// airlock-agent as separate processes. The agent dials the kernel (it listens
// on nothing), enrolls with a one-time token, and runs the enclave of a
// request whose datasets are bound to it under its own `process` isolator;
// queries reach that enclave through the HTTPS tunnel and the agent's own
// outbound connection. Killing the agent turns queries into 503s.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "kernel/agent/link_frame.h"
#include "tests/kernel/e2e/greeting_server.h"
#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/kernel/e2e_agent/agent_process.h"
#include "tests/kernel/e2e_agent/site_probes.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

extern char** environ;

namespace airlock::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kAlice = "alk_agent_alice_token";
constexpr const char* kBob = "alk_agent_bob_token";
constexpr const char* kEnrollmentToken = "enroll-edge-7f3a9c1d2e4b";
// What both the kernel's and the agent's process isolator must provide.
const json kMinIsolation = {"pid_namespace", "network_namespace", "no_new_privs"};

// Socket inodes of the descriptors `pid` holds.
std::set<std::string> SocketInodes(pid_t pid) {
  std::set<std::string> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) {
      out.insert(target.substr(8, target.size() - 9));
    }
  }
  return out;
}

// Inodes of LISTEN sockets in `pid`'s network namespace (/proc/<pid>/net/tcp{,6}).
std::set<std::string> ListeningInodes(pid_t pid) {
  std::set<std::string> out;
  for (const char* table : {"tcp", "tcp6"}) {
    std::istringstream lines(Slurp("/proc/" + std::to_string(pid) + "/net/" + table));
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      if (state == "0A") out.insert(inode);
    }
  }
  return out;
}

// Established TCP connections of `pid`'s sockets whose remote port is `port`.
int ConnectionsTo(pid_t pid, uint16_t port) {
  const std::set<std::string> mine = SocketInodes(pid);
  int count = 0;
  for (const char* table : {"tcp", "tcp6"}) {
    std::istringstream lines(Slurp("/proc/" + std::to_string(pid) + "/net/" + table));
    std::string line;
    std::getline(lines, line);
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      const size_t colon = remote.rfind(':');
      if (state == "01" && mine.count(inode) && colon != std::string::npos &&
          std::stoul(remote.substr(colon + 1), nullptr, 16) == port) {
        ++count;
      }
    }
  }
  return count;
}

class AgentE2E : public ::testing::Test {
 protected:
  void SetUp() override { pki_ = GenerateTestPki(dir_.path()); }

  void TearDown() override {
    agents_.clear();
    kernel_.reset();
  }

  json Config(int64_t certificate_lifetime_seconds = 3600,
              const std::vector<uint16_t>& approved_ports = {},
              const std::string& probe_object = "probe:1") {
    json egress = json::array();
    for (uint16_t port : approved_ports) egress.push_back("127.0.0.1:" + std::to_string(port));
    const std::string dir = dir_.path();
    std::filesystem::create_directories(dir + "/data");
    std::ofstream(dir + "/data/customers.csv")
        << "id,name,country\n1,Ada,GB\n2,Grace,US\n3,Edsger,NL\n";
    json policy = AnalystsPolicy({"*"});
    return {
        {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
        {"state_dir", dir + "/state"},
        {"identity", AliceAndBobIdentity(kAlice, kBob)},
        {"policy", RulesPolicyRef(policy)},
        {"isolator", ProcessIsolatorRef(dir + "/enclaves", kMinIsolation)},
        {"tunnel", HttpsTunnelRef(pki_)},
        {"connectors",
         {{"files",
           {{"plugin", PluginPath("airlock_connector_files")},
            {"config", {{"root", dir + "/data"}}}}},
          {"edge_files",
           {{"plugin", PluginPath("airlock_connector_files")},
            {"agent", "edge"},
            {"config", {{"root", dir + "/data"}}}}},
          {"edge_chaos",
           {{"plugin", PluginPath("airlock_test_connector_chaos")},
            {"agent", "edge"},
            {"egress", egress}}}}},
        {"datasets",
         {{{"name", "customers"}, {"connector", "files"}, {"object", "customers.csv"}},
          {{"name", "edge_customers"}, {"connector", "edge_files"}, {"object", "customers.csv"}},
          {{"name", "edge_probe"}, {"connector", "edge_chaos"}, {"object", probe_object}}}},
        {"agents",
         {{"listen_address", "127.0.0.1"},
          {"port", 0},
          {"heartbeat_interval_ms", 200},
          {"offline_after_ms", 5000},
          {"certificate_lifetime_seconds", certificate_lifetime_seconds},
          {"agents", {{"edge", {{"enrollment_token_sha256", Sha256HexOf(kEnrollmentToken)}}}}}}}};
  }

  void StartKernel(const json& config) {
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
    const json agents = client_->Get("/v1/agents", Auth(kAlice)).json();
    agent_port_ = agents["listen"].value("port", 0);
    ASSERT_NE(agent_port_, 0) << agents.dump();
  }

  // Writes an agent configuration; `token` goes into its token file.
  std::string AgentConfig(const std::string& name, const std::string& state,
                          const std::string& token, const std::string& agent_name = "edge",
                          const std::string& kernel_address = "127.0.0.1") {
    const std::string path = dir_.path() + "/" + name + ".json";
    std::ofstream(path) << SiteAgentConfig(dir_.path(), name, state, token, agent_name,
                                           kernel_address, agent_port_, kMinIsolation)
                               .dump(2);
    return path;
  }

  AgentProcess& StartAgent(const std::string& config_path, std::vector<std::string> wrapper = {}) {
    agents_.push_back(std::make_unique<AgentProcess>(
        config_path, dir_.path() + "/agent-" + std::to_string(agents_.size()) + ".log",
        std::move(wrapper)));
    EXPECT_TRUE(agents_.back()->Start());
    return *agents_.back();
  }

  json AgentStatus(const std::string& name = "edge") {
    for (const auto& a :
         client_->Get("/v1/agents", Auth(kAlice)).json().value("agents", json::array())) {
      if (a.value("name", "") == name) return a;
    }
    return json::object();
  }

  bool WaitAgent(const std::string& status,
                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return WaitUntil([&] { return AgentStatus().value("status", "") == status; }, timeout);
  }

  json Get(const std::string& id) {
    return client_->Get("/v1/requests/" + id, Auth(kAlice)).json();
  }

  std::string WaitForState(const std::string& id, const std::set<std::string>& states) {
    std::string state;
    WaitUntil(
        [&] {
          state = Get(id).value("state", "");
          return states.count(state) > 0;
        },
        std::chrono::seconds(30));
    return state;
  }

  std::string Ready(const std::vector<std::string>& datasets) {
    auto created = client_->Post(
        "/v1/requests",
        json{{"datasets", datasets}, {"window_seconds", 600}, {"purpose", "test"}}.dump(),
        Auth(kAlice));
    EXPECT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    EXPECT_EQ(client_->Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
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

  std::vector<json> Audit() { return AuditRecords(dir_.path() + "/state/audit.log"); }

  int CountEvents(const std::string& event, const std::string& agent = "edge") {
    int count = 0;
    for (const json& r : Audit()) {
      const json& body = r.contains("event") ? r : r;
      if (body.value("event", "") == event && body.value("agent", "") == agent) ++count;
    }
    return count;
  }

  TempDir dir_{"airlock-agent-e2e-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> client_;
  uint16_t agent_port_ = 0;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

// A free TCP port on 127.0.0.1 (bound, then released for a server to take).
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool Accepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// The agent link through a real HTTP forward proxy (Debian's tinyproxy, run
// by the test on loopback) that demands Basic authentication and lets
// CONNECT through to the kernel's agent port only.
TEST_F(AgentE2E, TheLinkGoesThroughAForwardProxyThatAuthenticatesIt) {
  StartKernel(Config());
  const std::string dir = dir_.path();
  const uint16_t proxy_port = FreePort();
  std::ofstream(dir + "/tinyproxy.conf")
      << "Port " << proxy_port << "\nListen 127.0.0.1\nTimeout 60\nMaxClients 20\n"
      << "LogFile \"" << dir << "/tinyproxy.log\"\nLogLevel Connect\nAllow 127.0.0.1\n"
      << "BasicAuth airlock-edge pr0xy-pass-8c1e\nConnectPort " << agent_port_ << "\n";
  ChildProcess proxy(
      {"/bin/sh", "-c", "echo starting; exec tinyproxy -d -c " + dir + "/tinyproxy.conf"},
      std::chrono::seconds(10));
  ASSERT_TRUE(WaitUntil([&] { return Accepts(proxy_port); }, std::chrono::seconds(10)));
  const std::string proxy_url = "http://127.0.0.1:" + std::to_string(proxy_port);
  auto with_proxy = [&](const std::string& name, const std::string& state,
                        const std::string& credentials) {
    const std::string path = AgentConfig(name, state, kEnrollmentToken);
    json config = json::parse(std::ifstream(path));
    const std::string auth_file = dir + "/" + name + ".proxy-auth";
    std::ofstream(auth_file) << credentials << "\n";
    ::chmod(auth_file.c_str(), 0600);
    config["kernel"]["https_proxy"] = proxy_url;
    config["kernel"]["proxy_credentials"] = "file:" + auth_file;
    std::ofstream(path, std::ios::trunc) << config.dump(2);
    return path;
  };

  // Wrong credentials: the proxy refuses (tinyproxy answers 401), the agent
  // says so, and keeps trying without ever linking.
  AgentProcess& refused = StartAgent(with_proxy("edge-bad", "edge-bad-state", "airlock-edge:nope"));
  EXPECT_TRUE(WaitUntil([&] {
    return refused.log().find("refused the tunnel to the kernel: HTTP/1.0 401") !=
           std::string::npos;
  })) << refused.log();
  EXPECT_EQ(AgentStatus().value("status", ""), "never_connected");
  // It keeps trying (tinyproxy sees every attempt) but says so once.
  const auto attempts = [&] {
    const std::string seen = Slurp(dir + "/tinyproxy.log");
    size_t n = 0;
    for (size_t at = seen.find("CONNECT 127.0.0.1"); at != std::string::npos;
         at = seen.find("CONNECT 127.0.0.1", at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_TRUE(WaitUntil([&] { return attempts() >= 3; })) << Slurp(dir + "/tinyproxy.log");
  const std::string said = refused.log();
  size_t sayings = 0;
  for (size_t at = said.find("refused the tunnel"); at != std::string::npos;
       at = said.find("refused the tunnel", at + 1)) {
    ++sayings;
  }
  EXPECT_EQ(sayings, 1u) << said;
  refused.Kill();
  EXPECT_EQ(refused.log().find("nope"), std::string::npos) << "credentials in the log";

  // The right ones: enrollment and the link both go through the proxy.
  AgentProcess& agent =
      StartAgent(with_proxy("edge", "edge-state", "airlock-edge:pr0xy-pass-8c1e"));
  ASSERT_TRUE(WaitAgent("online")) << agent.log() << kernel_->log();
  const std::string id = Ready({"edge_customers"});
  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT COUNT(*) AS n FROM edge_customers");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  std::ifstream log(dir + "/tinyproxy.log");
  const std::string proxied((std::istreambuf_iterator<char>(log)),
                            std::istreambuf_iterator<char>());
  EXPECT_NE(proxied.find("CONNECT 127.0.0.1:" + std::to_string(agent_port_)), std::string::npos)
      << proxied;
  EXPECT_EQ(agent.log().find("pr0xy-pass-8c1e"), std::string::npos);
}

TEST_F(AgentE2E, QueryReachesTheAgentsEnclaveAndAKilledAgentMeans503) {
  StartKernel(Config());
  EXPECT_EQ(AgentStatus().value("status", ""), "never_connected");
  AgentProcess& agent = StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken));
  ASSERT_TRUE(WaitAgent("online")) << agent.log() << kernel_->log();
  // The agent's key is private to it.
  EXPECT_EQ(std::filesystem::status(dir_.path() + "/edge-state/identity.pem").permissions() &
                std::filesystem::perms::group_all,
            std::filesystem::perms::none);

  const std::string id = Ready({"edge_customers"});
  json ready = Get(id);
  EXPECT_EQ(ready["enclave"].value("agent", ""), "edge") << ready.dump();
  EXPECT_EQ(ready["enclave"]["agent_status"].value("status", ""), "online") << ready.dump();
  // The enclave runs under the agent, not under the kernel.
  const std::vector<pid_t> enclaves = EnclaveChildren(agent.pid());
  EXPECT_EQ(enclaves.size(), 1u);
  EXPECT_TRUE(EnclaveChildren(kernel_->pid()).empty());

  // The agent holds no listening socket, and its only connection to the
  // kernel is the one it dialled to the agent port.
  const std::set<std::string> listening = ListeningInodes(agent.pid());
  for (const std::string& inode : SocketInodes(agent.pid())) {
    EXPECT_EQ(listening.count(inode), 0u) << "the agent listens on socket inode " << inode;
  }
  EXPECT_EQ(ConnectionsTo(agent.pid(), agent_port_), 1);
  EXPECT_EQ(ConnectionsTo(agent.pid(), kernel_->port()), 0)
      << "agent port " << agent_port_ << ", API port " << kernel_->port() << "\n"
      << Slurp("/proc/" + std::to_string(agent.pid()) + "/net/tcp");

  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT name FROM edge_customers ORDER BY id");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  ASSERT_EQ(rows.json()["rows"].size(), 3u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][1][0], "Grace");
  auto tables = t.client->Get(t.prefix + "/tables", {{"Authorization", "Bearer " + t.credential}});
  EXPECT_EQ(tables.status, 200u) << tables.body;

  // The agent dies: its request's queries answer 503, naming the agent and why.
  agent.Kill();
  ASSERT_TRUE(WaitAgent("offline")) << AgentStatus().dump();
  // The enclave (and the data in it) does not outlive its agent.
  for (pid_t pid : enclaves) {
    EXPECT_TRUE(WaitUntil([&] {
      const std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
      return stat.empty() || stat.find(") Z") != std::string::npos;
    })) << "enclave "
        << pid << " survived its agent";
  }
  auto refused = Query(t, "SELECT count(*) FROM edge_customers");
  EXPECT_EQ(refused.status, 503u) << refused.body;
  const json error = refused.json();
  EXPECT_EQ(error.value("error", ""), "unavailable") << refused.body;
  EXPECT_NE(error.value("message", "").find("agent 'edge' is offline"), std::string::npos)
      << refused.body;
  auto schema = t.client->Get(t.prefix + "/tables", {{"Authorization", "Bearer " + t.credential}});
  EXPECT_EQ(schema.status, 503u) << schema.body;
  json offline = Get(id);
  EXPECT_EQ(offline["enclave"]["agent_status"].value("status", ""), "offline") << offline.dump();
  EXPECT_FALSE(offline["enclave"]["agent_status"].value("reason", "").empty()) << offline.dump();
  EXPECT_TRUE(offline["enclave"]["agent_status"].contains("last_seen_us"));

  // The agent comes back with its stored certificate (the token is spent and
  // gone): it reconnects, and the request whose enclave died with it fails.
  std::filesystem::remove(dir_.path() + "/edge.token");
  AgentProcess& again = StartAgent(dir_.path() + "/edge.json");
  ASSERT_TRUE(WaitAgent("online")) << again.log();
  EXPECT_EQ(WaitForState(id, {"failed"}), "failed") << Get(id).dump();
  EXPECT_NE(Get(id).value("reason", "").find("lost"), std::string::npos) << Get(id).dump();
  // A new request runs on the restarted agent.
  const std::string second = Ready({"edge_customers"});
  Tunnel t2 = OpenTunnel(second);
  auto after = Query(t2, "SELECT count(*) FROM edge_customers");
  ASSERT_EQ(after.status, 200u) << after.body;
  EXPECT_EQ(after.json()["rows"][0][0], 3);
  ASSERT_EQ(client_->Post("/v1/requests/" + second + "/revoke", "{}", Auth(kAlice)).status, 200u);
  EXPECT_TRUE(WaitUntil([&] { return EnclaveChildren(again.pid()).empty(); }))
      << "revoke destroys the enclave on the agent's host";

  EXPECT_EQ(CountEvents("agent.enrolled"), 1);
  EXPECT_EQ(CountEvents("agent.certificate_issued"), 1);
  EXPECT_EQ(CountEvents("agent.connected"), 2);
  EXPECT_GE(CountEvents("agent.disconnected"), 1);
  EXPECT_GE(CountEvents("enclave.provisioned"), 2);
  // The token never reaches the kernel's records or log.
  EXPECT_EQ(Slurp(dir_.path() + "/state/audit.log").find(kEnrollmentToken), std::string::npos);
  EXPECT_EQ(kernel_->log().find(kEnrollmentToken), std::string::npos);

  // Both stop cleanly while linked (the kernel first: the agent sees it go).
  EXPECT_EQ(kernel_->Stop(), 0) << kernel_->log();
  EXPECT_EQ(again.Stop(), 0) << again.log();
  // (Sanitized builds: no leak or memory error in either process. Sandboxed
  // enclaves share the agent's log, and LeakSanitizer cannot run inside them.)
  for (const std::string& log : {kernel_->log(), again.log()}) {
    EXPECT_EQ(log.find("detected memory leaks"), std::string::npos) << log;
    EXPECT_EQ(log.find("ERROR: AddressSanitizer"), std::string::npos) << log;
  }
}

TEST_F(AgentE2E, EgressIsServedOnTheAgentsHostForApprovedEndpointsOnly) {
  GreetingServer approved("hello-from-the-data-center");
  GreetingServer other("hello-other");
  const std::string ports = std::to_string(approved.port()) + "," + std::to_string(other.port());
  StartKernel(Config(3600, {approved.port()}, "probe:" + ports));
  AgentProcess& agent = StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken));
  ASSERT_TRUE(WaitAgent("online")) << agent.log();
  const std::string id = Ready({"edge_probe"});
  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT port, outcome, greeting FROM edge_probe ORDER BY port = " +
                           std::to_string(other.port()));
  ASSERT_EQ(rows.status, 200u) << rows.body;
  json r = rows.json()["rows"];
  ASSERT_EQ(r.size(), 2u) << rows.body;
  EXPECT_EQ(r[0][1], "connected") << rows.body;
  EXPECT_EQ(r[0][2], "hello-from-the-data-center");
  EXPECT_EQ(r[1][1], "refused") << "a non-approved port is unreachable from the enclave";
  EXPECT_EQ(approved.accepted(), 1);
  EXPECT_EQ(other.accepted(), 0);
  // The agent dialled from its host and reported it; the kernel audited it.
  bool audited = false;
  for (const json& rec : Audit()) {
    if (rec.value("event", "") == "enclave.egress" && rec.value("request_id", "") == id &&
        rec.value("agent", "") == "edge" && rec.value("outcome", "") == "connected" &&
        rec.value("endpoint", "") == "127.0.0.1:" + std::to_string(approved.port())) {
      audited = true;
    }
  }
  EXPECT_TRUE(audited);
  EXPECT_NE(agent.log().find("egress to 127.0.0.1:" + std::to_string(approved.port())),
            std::string::npos)
      << agent.log();
}

TEST_F(AgentE2E, ABadOrSpentEnrollmentTokenIsRefused) {
  StartKernel(Config());
  AgentProcess& wrong = StartAgent(AgentConfig("wrong", "wrong-state", "not-the-token"));
  EXPECT_EQ(wrong.WaitExit(std::chrono::seconds(20)), 3) << wrong.log();
  EXPECT_NE(wrong.log().find("invalid enrollment token"), std::string::npos) << wrong.log();
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/wrong-state/identity.pem"));
  // An agent name the kernel does not know is refused the same way.
  AgentProcess& stranger =
      StartAgent(AgentConfig("stranger", "stranger-state", kEnrollmentToken, "stranger"));
  EXPECT_EQ(stranger.WaitExit(std::chrono::seconds(20)), 3) << stranger.log();

  AgentProcess& good = StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken));
  ASSERT_TRUE(WaitAgent("online")) << good.log();
  // The token is one-time: a second enrollment with it fails.
  AgentProcess& replay = StartAgent(AgentConfig("replay", "replay-state", kEnrollmentToken));
  EXPECT_EQ(replay.WaitExit(std::chrono::seconds(20)), 3) << replay.log();
  EXPECT_NE(replay.log().find("already used"), std::string::npos) << replay.log();
  EXPECT_EQ(CountEvents("agent.enrollment_refused"), 2);  // "stranger" is not recorded by name
  EXPECT_EQ(CountEvents("agent.enrolled"), 1);
}

TEST_F(AgentE2E, AClientCertificateFromAnotherCaIsRefused) {
  StartKernel(Config());
  namespace asio = boost::asio;
  namespace ssl = boost::asio::ssl;
  // A certificate that names the agent but is signed by another CA.
  CertSpec spec;
  spec.common_name = "edge";
  spec.client_auth = true;
  const CertFiles forged = IssueCertificate(dir_.path(), "forged-edge", spec, &pki_.other_ca);
  ssl::context tls(ssl::context::tlsv13_client);
  tls.load_verify_file(dir_.path() + "/state/agents/ca.crt");
  tls.set_verify_mode(ssl::verify_peer);
  tls.use_certificate_chain_file(forged.cert_file);
  tls.use_private_key_file(forged.key_file, ssl::context::pem);
  asio::io_context io;
  ssl::stream<asio::ip::tcp::socket> stream(io, tls);
  stream.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), agent_port_});
  boost::system::error_code ec;
  stream.handshake(ssl::stream_base::client, ec);
  if (!ec) {
    // TLS 1.3: the server's verdict on the client certificate arrives after
    // the client's handshake; the link must end before any reply.
    const std::string hello = agent::EncodeLinkFrame(agent::LinkFrameType::kControl, 0,
                                                     R"({"type":"hello","enclaves":[]})");
    asio::write(stream, asio::buffer(hello), ec);
    unsigned char header[agent::kLinkHeaderBytes];
    asio::read(stream, asio::buffer(header, sizeof header), ec);
  }
  EXPECT_TRUE(ec) << "the kernel accepted a certificate from another CA";
  EXPECT_EQ(AgentStatus().value("status", ""), "never_connected");
  EXPECT_EQ(CountEvents("agent.connected"), 0);
}

TEST_F(AgentE2E, TheLinkCertificateIsRenewedBeforeItExpires) {
  StartKernel(Config(/*certificate_lifetime_seconds=*/6));
  AgentProcess& agent = StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken));
  ASSERT_TRUE(WaitAgent("online")) << agent.log();
  const std::string first_serial = AgentStatus()["certificate"].value("serial", "");
  const auto connected_at = Clock::now();
  // Well past the first certificate's expiry the link is still up, on a
  // renewed certificate (an expired one makes the kernel drop the link).
  ASSERT_TRUE(WaitUntil([&] { return CountEvents("agent.certificate_renewed") >= 2; },
                        std::chrono::seconds(20)))
      << agent.log();
  while (Clock::now() - connected_at < std::chrono::seconds(8)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const json status = AgentStatus();
  EXPECT_EQ(status.value("status", ""), "online") << status.dump() << agent.log();
  EXPECT_NE(status["certificate"].value("serial", ""), first_serial);
  EXPECT_EQ(CountEvents("agent.connected"), 1) << "renewal happens over the live link";
  // The renewed key replaced the enrolled one, privately.
  EXPECT_EQ(std::filesystem::status(dir_.path() + "/edge-state/identity.pem").permissions() &
                (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
  // A fresh connection authenticates with the renewed certificate.
  agent.Kill();
  ASSERT_TRUE(WaitAgent("offline"));
  AgentProcess& again = StartAgent(dir_.path() + "/edge.json");
  ASSERT_TRUE(WaitAgent("online")) << again.log();
}

TEST_F(AgentE2E, RenewalRetiresTheCertificatesItReplaced) {
  StartKernel(Config(/*certificate_lifetime_seconds=*/30));
  // Renew when 90% of the lifetime is left: every few seconds.
  const std::string config_path = AgentConfig("edge", "edge-state", kEnrollmentToken);
  json agent_config = json::parse(Slurp(config_path));
  agent_config["renew_remaining_fraction"] = 0.9;
  std::ofstream(config_path) << agent_config.dump(2);
  AgentProcess& agent = StartAgent(config_path);
  ASSERT_TRUE(WaitAgent("online")) << agent.log();
  // Keep the enrolled certificate and its key (one file: a consistent pair
  // even while a renewal replaces it), still valid for half a minute.
  const std::string old_identity = dir_.path() + "/old.pem";
  std::filesystem::copy_file(dir_.path() + "/edge-state/identity.pem", old_identity);
  ASSERT_TRUE(WaitUntil([&] { return CountEvents("agent.certificate_renewed") >= 2; },
                        std::chrono::seconds(20)))
      << agent.log();

  namespace asio = boost::asio;
  namespace ssl = boost::asio::ssl;
  ssl::context tls(ssl::context::tlsv13_client);
  tls.load_verify_file(dir_.path() + "/state/agents/ca.crt");
  tls.set_verify_mode(ssl::verify_peer);
  tls.use_certificate_chain_file(old_identity);
  tls.use_private_key_file(old_identity, ssl::context::pem);
  asio::io_context io;
  ssl::stream<asio::ip::tcp::socket> stream(io, tls);
  stream.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), agent_port_});
  boost::system::error_code ec;
  stream.handshake(ssl::stream_base::client, ec);
  ASSERT_FALSE(ec) << "the old certificate is still within its validity: " << ec.message();
  const std::string hello = agent::EncodeLinkFrame(agent::LinkFrameType::kControl, 0,
                                                   R"({"type":"hello","enclaves":[]})");
  asio::write(stream, asio::buffer(hello), ec);
  unsigned char header[agent::kLinkHeaderBytes];
  asio::read(stream, asio::buffer(header, sizeof header), ec);
  EXPECT_TRUE(ec) << "a retired certificate opened a link";
  EXPECT_TRUE(WaitUntil([&] { return CountEvents("agent.connection_refused") == 1; }));
  // The real agent, on its current certificate, was never displaced.
  EXPECT_EQ(AgentStatus().value("status", ""), "online");
  EXPECT_EQ(CountEvents("agent.connected"), 1);
}

TEST_F(AgentE2E, OneRequestCannotSpanTheKernelAndAnAgent) {
  StartKernel(Config());
  auto created = client_->Post(
      "/v1/requests",
      json{{"datasets", {"customers", "edge_customers"}}, {"window_seconds", 600}}.dump(),
      Auth(kAlice));
  EXPECT_EQ(created.status, 400u) << created.body;
  EXPECT_NE(created.body.find("agent 'edge'"), std::string::npos) << created.body;
}

TEST_F(AgentE2E, ARequestForAnOfflineAgentFailsWithTheReason) {
  StartKernel(Config());
  auto created = client_->Post(
      "/v1/requests", json{{"datasets", {"edge_customers"}}, {"window_seconds", 600}}.dump(),
      Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(client_->Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
  EXPECT_EQ(WaitForState(id, {"failed", "ready"}), "failed");
  EXPECT_NE(Get(id).value("reason", "").find("agent 'edge'"), std::string::npos) << Get(id).dump();
}

// The datasets' site entry in GET /v1/catalog (null when it has none).
json CatalogSite(HttpClient& client, const std::string& dataset, const std::string& token) {
  for (const json& d : client.Get("/v1/catalog", Auth(token)).json().value("datasets", json())) {
    if (d.value("name", "") == dataset) return d.value("site", json());
  }
  return json();
}

// An admin suspends the agent's site while a query runs in its enclave: the
// query's connection drops within a second, the request is closed with the
// admin's reason and its enclave destroyed on the agent's host. Asks for the
// site's datasets are then refused with the reason (the kernel's own are
// still served), the catalog and the agents' list show it, and all of this
// outlives a kernel restart; resuming restores asking. Audited both ways.
TEST_F(AgentE2E, ASuspendedSiteDropsItsTunnelsAndRefusesAsksUntilResumed) {
  json config = Config();
  config["access"] = {{"admin_groups", {"owners"}}};
  StartKernel(config);
  AgentProcess& agent = StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken));
  ASSERT_TRUE(WaitAgent("online")) << agent.log() << kernel_->log();
  const std::string id = Ready({"edge_customers"});
  ASSERT_EQ(EnclaveChildren(agent.pid()).size(), 1u);
  Tunnel t = OpenTunnel(id);

  // Admins only, with a reason, for a configured agent that is not suspended.
  const std::string why = R"({"reason":"breach under investigation"})";
  EXPECT_EQ(client_->Post("/v1/agents/edge/suspend", why, Auth(kAlice)).status, 403u);
  EXPECT_EQ(client_->Post("/v1/agents/edge/suspend", "{}", Auth(kBob)).status, 400u);
  EXPECT_EQ(client_->Post("/v1/agents/edge/suspend", R"({"reason":""})", Auth(kBob)).status, 400u);
  EXPECT_EQ(
      client_->Post("/v1/agents/edge/suspend", R"({"reason":"x","until":1})", Auth(kBob)).status,
      400u);
  EXPECT_EQ(client_->Post("/v1/agents/nowhere/suspend", why, Auth(kBob)).status, 404u);
  EXPECT_EQ(client_->Post("/v1/agents/edge/resume", why, Auth(kBob)).status, 409u);
  EXPECT_EQ(Get(id).value("state", ""), "ready") << "a refused suspension changed nothing";

  // A query that would run for minutes, cut short by the suspension.
  ClientResponse suspended;
  const CutShortQuery slow = QueryCutShortBy(
      t, [&] { suspended = client_->Post("/v1/agents/edge/suspend", why, Auth(kBob)); });
  EXPECT_TRUE(slow.ran_until_act) << "the slow query ended early: " << slow.answer.body;
  ASSERT_EQ(suspended.status, 200u) << suspended.body;
  EXPECT_EQ(suspended.json()["closed_requests"], json::array({id})) << suspended.body;
  EXPECT_LT(slow.ended_after, std::chrono::seconds(1))
      << "the running query's connection outlived the suspension by "
      << std::chrono::duration_cast<std::chrono::milliseconds>(slow.ended_after).count() << " ms";
  EXPECT_NE(slow.answer.status, 200u) << slow.answer.body;
  const json closed = Get(id);
  EXPECT_EQ(closed.value("state", ""), "closed") << closed.dump();
  EXPECT_NE(closed.value("reason", "").find("breach under investigation"), std::string::npos)
      << closed.dump();
  EXPECT_TRUE(WaitUntil([&] { return EnclaveChildren(agent.pid()).empty(); }))
      << "the enclave outlived its site's suspension";
  EXPECT_NE(Query(t, "SELECT 1").status, 200u) << "the tunnel still answers";

  // Asks for the site's datasets are refused with the reason; the kernel's
  // own datasets are still served.
  const std::string edge_ask =
      json{{"datasets", {"edge_customers"}}, {"window_seconds", 600}, {"purpose", "test"}}.dump();
  auto refused = client_->Post("/v1/requests", edge_ask, Auth(kAlice));
  EXPECT_EQ(refused.status, 403u) << refused.body;
  EXPECT_NE(refused.json().value("message", "").find("site 'edge' is suspended by bob: breach"),
            std::string::npos)
      << refused.body;
  auto local = client_->Post(
      "/v1/requests", json{{"datasets", {"customers"}}, {"purpose", "test"}}.dump(), Auth(kAlice));
  EXPECT_EQ(local.status, 201u) << local.body;
  // Shown where people look; the link itself stays up.
  const json site = CatalogSite(*client_, "edge_customers", kAlice);
  EXPECT_EQ(site.value("status", ""), "suspended") << site.dump();
  EXPECT_EQ(site["suspension"].value("reason", ""), "breach under investigation") << site.dump();
  EXPECT_TRUE(CatalogSite(*client_, "customers", kAlice).is_null());
  EXPECT_EQ(AgentStatus()["suspension"].value("by", ""), "bob") << AgentStatus().dump();
  EXPECT_EQ(AgentStatus().value("status", ""), "online");
  EXPECT_EQ(client_->Post("/v1/agents/edge/suspend", why, Auth(kBob)).status, 409u);
  EXPECT_NE(client_->Get("/metrics").body.find("airlock_site_suspended{site=\"edge\"} 1\n"),
            std::string::npos);

  // The kernel restarts (its agent port kept, so the agent links again):
  // the site is still suspended.
  ASSERT_EQ(kernel_->Stop(), 0) << kernel_->log();
  config["agents"]["port"] = agent_port_;
  StartKernel(config);
  auto still = client_->Post("/v1/requests", edge_ask, Auth(kAlice));
  EXPECT_EQ(still.status, 403u) << "the suspension did not survive the restart: " << still.body;
  EXPECT_EQ(CatalogSite(*client_, "edge_customers", kAlice).value("status", ""), "suspended");
  ASSERT_TRUE(WaitAgent("online")) << agent.log();

  // Resumed: asking works again, on the same agent.
  EXPECT_EQ(client_->Post("/v1/agents/edge/resume", "{}", Auth(kBob)).status, 400u);
  auto resumed =
      client_->Post("/v1/agents/edge/resume", R"({"reason":"investigation closed"})", Auth(kBob));
  ASSERT_EQ(resumed.status, 200u) << resumed.body;
  EXPECT_FALSE(AgentStatus().contains("suspension")) << AgentStatus().dump();
  EXPECT_NE(client_->Get("/metrics").body.find("airlock_site_suspended{site=\"edge\"} 0\n"),
            std::string::npos);
  EXPECT_EQ(CatalogSite(*client_, "edge_customers", kAlice).value("status", ""), "online");
  const std::string next = Ready({"edge_customers"});
  Tunnel t2 = OpenTunnel(next);
  auto rows = Query(t2, "SELECT count(*) FROM edge_customers");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], 3);

  // Both acts are audited with who and why.
  std::vector<json> acts;
  for (const json& r : Audit()) {
    const std::string event = r.value("event", "");
    if (event == "agent.suspended" || event == "agent.resumed") acts.push_back(r);
  }
  ASSERT_EQ(acts.size(), 2u);
  EXPECT_EQ(acts[0].value("event", ""), "agent.suspended");
  EXPECT_EQ(acts[0].value("reason", ""), "breach under investigation");
  EXPECT_EQ(acts[0]["principal"].value("subject", ""), "bob") << acts[0].dump();
  EXPECT_EQ(acts[1].value("event", ""), "agent.resumed");
  EXPECT_EQ(acts[1].value("reason", ""), "investigation closed");
}

// A site declares datasets in the agent's own configuration: its connector,
// object and data stay on its host. The agent describes them there and
// pushes only metadata, on connect and then periodically; the kernel's
// catalog shows them with their site and freshness. A canary value in the
// source never reaches the kernel while this happens: not its memory (so no
// frame carried it), not its files, not its log, not the catalog. Asked
// for, the dataset is served by an enclave on the agent's host, which fills
// in the connector the kernel never knew.
TEST_F(AgentE2E, ASitesOwnDatasetsSyncAsMetadataOnlyAndAreServedOnItsHost) {
  StartKernel(Config());
  const std::string dir = dir_.path();
  const std::string canary = "CANARY-5b0d9e77a1c4";
  std::filesystem::create_directories(dir + "/site-data");
  std::ofstream(dir + "/site-data/orders.csv")
      << "id,customer,amount\n1,Zed,10\n2," << canary << ",20\n3,Ada,30\n";
  const std::string path = AgentConfig("edge", "edge-state", kEnrollmentToken);
  json agent_config = json::parse(Slurp(path));
  agent_config["connectors"] = {{"site_files",
                                 {{"plugin", PluginPath("airlock_connector_files")},
                                  {"config", {{"root", dir + "/site-data"}}}}}};
  agent_config["datasets"] = {{{"name", "site_orders"},
                               {"connector", "site_files"},
                               {"object", "orders.csv"},
                               {"description", "Orders kept at the edge"},
                               {"tags", {"finance"}},
                               {"key", {"customer"}}}};
  agent_config["sync_interval_seconds"] = 1;
  std::ofstream(path) << agent_config.dump(2);
  AgentProcess& agent = StartAgent(path);
  ASSERT_TRUE(WaitAgent("online")) << agent.log() << kernel_->log();

  // The metadata arrives, with the site and its freshness.
  json entry;
  auto find_entry = [&] {
    for (const json& d :
         client_->Get("/v1/catalog", Auth(kAlice)).json().value("datasets", json())) {
      if (d.value("name", "") == "site_orders") return d;
    }
    return json();
  };
  ASSERT_TRUE(WaitUntil([&] {
    entry = find_entry();
    return entry.is_object() && entry.contains("columns");
  })) << entry.dump()
      << agent.log();
  EXPECT_EQ(entry.value("description", ""), "Orders kept at the edge");
  EXPECT_EQ(entry["tags"], json::array({"finance"}));
  std::vector<std::string> columns;
  for (const json& c : entry["columns"]) columns.push_back(c.value("name", ""));
  EXPECT_EQ(columns, (std::vector<std::string>{"id", "customer", "amount"})) << entry.dump();
  EXPECT_EQ(entry.value("rows", -1), 3) << "the site's connector counted its rows";
  EXPECT_EQ(entry["site"].value("agent", ""), "edge");
  EXPECT_EQ(entry["site"].value("sync", ""), "ok") << entry.dump();
  EXPECT_EQ(entry["site"].value("status", ""), "online");
  EXPECT_EQ(entry["schema"].value("source", ""), "site");
  EXPECT_EQ(entry["key"], json::array({"customer"})) << "the key the site declares is shown";
  const int64_t first_sync = entry["site"].value("received_at_us", int64_t{0});
  EXPECT_GT(first_sync, 0);
  // ... and again, periodically.
  EXPECT_TRUE(WaitUntil([&] {
    return find_entry()["site"].value("received_at_us", int64_t{0}) > first_sync;
  })) << "the site synced once only";
  // Shown to a dashboard: what the site owns and how fresh it is.
  const std::string metrics = client_->Get("/metrics").body;
  EXPECT_NE(metrics.find("airlock_site_datasets{site=\"edge\"} 1\n"), std::string::npos) << metrics;
  const std::string age = "airlock_site_catalog_age_seconds{site=\"edge\"} ";
  ASSERT_NE(metrics.find(age), std::string::npos) << metrics;
  EXPECT_LT(std::stoll(metrics.substr(metrics.find(age) + age.size())), 30);
  // The kernel knows nothing of where the data lives.
  EXPECT_EQ(entry.dump().find("site-data"), std::string::npos) << entry.dump();
  EXPECT_EQ(entry.dump().find("orders.csv"), std::string::npos) << entry.dump();

  // No row value crossed: the canary is nowhere on the kernel's side.
  EXPECT_FALSE(MemoryHolds(kernel_->pid(), canary)) << "a row value reached the kernel's memory";
  EXPECT_FALSE(FilesHold(dir + "/state", canary)) << "a row value reached the kernel's files";
  EXPECT_EQ(kernel_->log().find(canary), std::string::npos);
  EXPECT_EQ(client_->Get("/v1/catalog", Auth(kAlice)).body.find(canary), std::string::npos);

  // Asked for, it is served on the agent's host, from the site's own source.
  const std::string id = Ready({"site_orders"});
  EXPECT_EQ(Get(id)["enclave"].value("agent", ""), "edge");
  // The site's periodic describe enclaves come and go beside the request's.
  EXPECT_TRUE(WaitUntil([&] { return EnclaveChildren(agent.pid()).size() == 1; }));
  EXPECT_TRUE(EnclaveChildren(kernel_->pid()).empty());
  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT customer, amount FROM site_orders ORDER BY id");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  ASSERT_EQ(rows.json()["rows"].size(), 3u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][1][0], canary);
  // The site's declared key reached its enclave: the table is stored in the
  // key's order (a scan without ORDER BY walks it), not the file's.
  auto scanned = Query(t, "SELECT id FROM site_orders");
  ASSERT_EQ(scanned.status, 200u) << scanned.body;
  EXPECT_EQ(scanned.json()["rows"], json::parse("[[3],[2],[1]]")) << scanned.body;
  // The memory probe sees a value once one has truly crossed (the query's
  // answer went through the kernel's tunnel): its silence above meant it.
  EXPECT_TRUE(MemoryHolds(kernel_->pid(), canary));

  // A site cannot take a configured dataset's name, nor mix with another host.
  auto mixed = client_->Post(
      "/v1/requests",
      json{{"datasets", {"customers", "site_orders"}}, {"window_seconds", 600}}.dump(),
      Auth(kAlice));
  EXPECT_EQ(mixed.status, 400u) << mixed.body;
  EXPECT_EQ(CountEvents("agent.catalog_synced"), 1) << "an unchanged catalog is audited once";

  // The kernel keeps what the site said: restarted while the agent is
  // away, it still lists the dataset (its site offline) and takes asks.
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  ASSERT_EQ(kernel_->Stop(), 0) << kernel_->log();
  json config = Config();
  config["agents"]["port"] = agent_port_;
  StartKernel(config);
  const json kept = find_entry();
  ASSERT_TRUE(kept.is_object()) << "the site's datasets were forgotten across a restart";
  EXPECT_EQ(kept["columns"].size(), 3u) << kept.dump();
  EXPECT_EQ(kept["key"], json::array({"customer"})) << kept.dump();
  EXPECT_EQ(kept["site"].value("status", ""), "never_connected") << kept.dump();
  auto asked =
      client_->Post("/v1/requests", json{{"datasets", {"site_orders"}}, {"purpose", "test"}}.dump(),
                    Auth(kAlice));
  EXPECT_EQ(asked.status, 201u) << asked.body;
}

// The agents' links and the HTTPS API share one port, the way through a
// firewall that opens 443 only: the agent dials the API's port, its
// ClientHello offers the link's ALPN protocol, and the kernel hands that
// connection to its agent listener untouched; every other connection on the
// port is the API's, as before.
TEST_F(AgentE2E, TheLinkSharesTheHttpsApiPort) {
  json config = Config();
  config["server"]["tls"] = {{"certificate_file", pki_.server.cert_file},
                             {"private_key_file", pki_.server.key_file}};
  config["agents"]["on_api_port"] = true;
  kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port(),
                                         ClientTls{pki_.ca.cert_file, "", ""});
  ASSERT_EQ(client_->Get("/v1/me", Auth(kAlice)).status, 200u) << "the API answers over TLS";
  agent_port_ = kernel_->port();  // the agent is told the API's port
  AgentProcess& agent = StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken));
  ASSERT_TRUE(WaitAgent("online")) << agent.log() << kernel_->log();
  EXPECT_EQ(ConnectionsTo(agent.pid(), kernel_->port()), 1)
      << "its link (enrolled and linked through the API's port)";
  const std::string id = Ready({"edge_customers"});
  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT count(*) FROM edge_customers");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], 3);
  // The API on the shared port is unchanged, for new connections too.
  HttpClient other("127.0.0.1", kernel_->port(), ClientTls{pki_.ca.cert_file, "", ""});
  EXPECT_EQ(other.Get("/v1/requests/" + id, Auth(kAlice)).json().value("state", ""), "ready");
  EXPECT_EQ(CountEvents("agent.connected"), 1);
}

// Without on_api_port, the API's port is the API's only: an agent dialling
// it never links.
TEST_F(AgentE2E, TheApiPortRefusesAgentsUnlessShared) {
  json config = Config();
  config["server"]["tls"] = {{"certificate_file", pki_.server.cert_file},
                             {"private_key_file", pki_.server.key_file}};
  kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port(),
                                         ClientTls{pki_.ca.cert_file, "", ""});
  agent_port_ = kernel_->port();
  AgentProcess& agent = StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(AgentStatus().value("status", ""), "never_connected") << agent.log();
  EXPECT_EQ(CountEvents("agent.enrolled"), 0);
}

// The strongest form: the agent in a network namespace of its own whose only
// route leads to the kernel's agent listener. This test moves itself (and so
// the kernel it starts) into a private network namespace first, so nothing
// here touches the host's network; it is skipped where namespaces or `ip`
// are not available. Defined last: it leaves its process in that namespace.
TEST_F(AgentE2E, AnAgentInItsOwnNetworkNamespaceServesQueriesThroughItsOutboundLink) {
  if (::geteuid() != 0 || !std::filesystem::exists("/usr/sbin/ip") ||
      !std::filesystem::exists("/usr/bin/unshare") ||
      !std::filesystem::exists("/usr/bin/nsenter")) {
    GTEST_SKIP() << "needs root, ip, unshare and nsenter";
  }
  if (::unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "cannot create a network namespace";
  // The kernel side: loopback up, only 127.0.0.1 itself local (not all of
  // 127.0.0.0/8), and
  // 127.66.0.1 on a veth whose peer will be the agent's only interface
  // (route_localnet lets loopback-range addresses travel on it).
  ASSERT_TRUE(AddKernelSideLink("vk", "va", "127.66.0.1"));
  json config = Config();
  config["agents"]["listen_address"] = "127.66.0.1";
  StartKernel(config);
  AgentProcess& agent =
      StartAgent(AgentConfig("edge", "edge-state", kEnrollmentToken, "edge", "127.66.0.1"),
                 {"/usr/bin/unshare", "--net", "--"});
  const std::string pid = std::to_string(agent.pid());
  // Wait until the agent's namespace exists, then give it its one route.
  ASSERT_TRUE(WaitForOwnNetwork(agent.pid()));
  ASSERT_TRUE(GiveLinkTo(agent.pid(), "va", "127.66.0.2"));
  ASSERT_TRUE(WaitAgent("online")) << agent.log();
  // A network namespace of its own, holding no listening socket at all.
  EXPECT_NE(std::filesystem::read_symlink("/proc/" + pid + "/ns/net"),
            std::filesystem::read_symlink("/proc/self/ns/net"));
  EXPECT_TRUE(ListeningInodes(agent.pid()).empty()) << Slurp("/proc/" + pid + "/net/tcp");
  EXPECT_EQ(ConnectionsTo(agent.pid(), agent_port_), 1);
  // From there only the kernel's agent port is reachable, not its API.
  EXPECT_TRUE(NamespaceReaches(agent.pid(), "127.66.0.1", agent_port_));
  EXPECT_FALSE(NamespaceReaches(agent.pid(), "127.0.0.1", kernel_->port()));
  EXPECT_FALSE(NamespaceReaches(agent.pid(), "127.66.0.1", kernel_->port()));

  const std::string id = Ready({"edge_customers"});
  Tunnel t = OpenTunnel(id);
  auto rows = Query(t, "SELECT count(*) FROM edge_customers");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], 3);
  agent.Kill();
  ASSERT_TRUE(WaitAgent("offline"));
  EXPECT_EQ(Query(t, "SELECT count(*) FROM edge_customers").status, 503u);
}

}  // namespace
}  // namespace airlock::test
