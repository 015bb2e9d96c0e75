// Enclaves of real airlockd processes under the `process` isolator, as
// neighbours: two kernels on one host keep their enclaves apart (a restart of
// one reaps only its own), and an enclave process carries only the `env:`
// secrets of the datasets it pulls, never the kernel's whole environment.
#include <openssl/rand.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kAlice = "alk_instances_alice_token";
constexpr const char* kBob = "alk_instances_bob_token";

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  RAND_bytes(raw.data(), static_cast<int>(raw.size()));
  std::string out;
  for (unsigned char c : raw) {
    out += "0123456789abcdef"[c >> 4];
    out += "0123456789abcdef"[c & 15];
  }
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Alive(pid_t pid) {
  const std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// /proc/<pid>/environ split at NULs; empty pieces (a wiped value's bytes) dropped.
std::vector<std::string> Environment(pid_t pid) {
  const std::string block = Slurp("/proc/" + std::to_string(pid) + "/environ");
  std::vector<std::string> out;
  size_t start = 0;
  while (start < block.size()) {
    size_t end = block.find('\0', start);
    if (end == std::string::npos) end = block.size();
    if (end > start) out.push_back(block.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// One airlockd with its own directory, state directory and tunnel.
class Kernel {
 public:
  Kernel(const std::string& dir, json config) : dir_(dir) {
    kernel_ = std::make_unique<KernelProcess>(dir, std::move(config));
  }

  ::testing::AssertionResult Start() {
    if (!kernel_->Start()) return ::testing::AssertionFailure() << kernel_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
    return ::testing::AssertionSuccess();
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

  // alice asks for `datasets`, bob approves, the enclave gets ready.
  std::string Ready(const std::vector<std::string>& datasets) {
    auto created = client_->Post(
        "/v1/requests",
        json{{"datasets", datasets}, {"window_seconds", 600}, {"purpose", "test"}}.dump(),
        Auth(kAlice));
    EXPECT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    auto approved = client_->Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob));
    EXPECT_EQ(approved.status, 200u) << approved.body;
    EXPECT_EQ(WaitForState(id, {"ready", "failed"}), "ready") << Get(id).dump();
    return id;
  }

  TunnelSession OpenTunnel(const std::string& id, const std::string& ca_file) {
    ClientResponse grant;
    TunnelSession t = ConnectTunnel(*client_, id, Auth(kAlice), ca_file, &grant);
    EXPECT_EQ(grant.status, 200u) << grant.body;
    return t;
  }

  KernelProcess& process() { return *kernel_; }

 private:
  std::string dir_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> client_;
};

class KernelInstancesE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(root_.path());
    std::filesystem::create_directories(root_.path() + "/data");
    std::ofstream(root_.path() + "/data/orders.csv")
        << "order_id,amount\n10,100.5\n11,20\n12,7.25\n13,1000\n";
  }

  // A kernel in <root>/<name> (its own state directory), whose isolator
  // keeps its records in `isolator_state_dir` (empty: where the kernel says,
  // <state_dir>/isolator).
  json Config(const std::string& name, const std::string& isolator_state_dir,
              const json& extra_connectors = json::object(),
              const json& extra_datasets = json::array()) {
    const std::string dir = root_.path() + "/" + name;
    std::filesystem::create_directories(dir);
    json policy = AnalystsPolicy({"*"});
    json connectors = {{"files",
                        {{"plugin", PluginPath("airlock_connector_files")},
                         {"config", {{"root", root_.path() + "/data"}}}}}};
    connectors.update(extra_connectors);
    json datasets = {{{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}}};
    for (const auto& d : extra_datasets) datasets.push_back(d);
    json isolator = ProcessIsolatorRef(isolator_state_dir, {"pid_namespace", "no_new_privs"});
    if (isolator_state_dir.empty()) isolator["config"].erase("state_dir");  // the kernel's
    return {{"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
            {"state_dir", dir + "/state"},
            {"identity", AliceAndBobIdentity(kAlice, kBob)},
            {"policy", RulesPolicyRef(policy)},
            {"isolator", isolator},
            {"tunnel", HttpsTunnelRef(pki_)},
            {"connectors", connectors},
            {"datasets", datasets}};
  }

  TempDir root_{"airlock-instances-e2e-"};
  TestPki pki_;
};

// Two kernels with their own state directories and, as an operator may well
// configure them, one isolator state_dir. Restarting one (after a crash) must
// reap only its own enclaves: the other's keeps answering queries throughout.
TEST_F(KernelInstancesE2E, RestartingOneKernelLeavesTheOthersEnclaveServing) {
  const std::string shared = root_.path() + "/isolator";
  Kernel first(root_.path() + "/first", Config("first", shared));
  Kernel second(root_.path() + "/second", Config("second", shared));
  ASSERT_TRUE(first.Start());
  ASSERT_TRUE(second.Start());

  const std::string first_id = first.Ready({"orders"});
  const std::string second_id = second.Ready({"orders"});
  const auto first_enclaves = EnclaveChildren(first.process().pid());
  const auto second_enclaves = EnclaveChildren(second.process().pid());
  ASSERT_EQ(first_enclaves.size(), 1u);
  ASSERT_EQ(second_enclaves.size(), 1u);

  // The first kernel's enclave serves queries, without pause, while the
  // second kernel crashes, restarts and reaps what it left.
  std::atomic<bool> restarted{false};
  std::atomic<int> answered{0}, failed{0};
  std::string failure;
  // A tunnel credential is collected once: this session serves to the end.
  TunnelSession tunnel = first.OpenTunnel(first_id, pki_.ca.cert_file);
  std::thread querying([&] {
    for (;;) {
      const bool last = restarted.load();
      auto rows = TunnelQuery(tunnel, "SELECT count(*), sum(amount) FROM orders");
      if (rows.status == 200 && rows.json()["rows"][0][0] == 4) {
        ++answered;
      } else if (failed++ == 0) {
        failure = std::to_string(rows.status) + " " + rows.body;
      }
      if (last) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  second.process().Kill();
  ASSERT_TRUE(second.Start());
  // Recovery has run (the lost request is closed), so has the reaping.
  EXPECT_EQ(second.WaitForState(second_id, {"closed"}), "closed");
  restarted = true;
  querying.join();

  EXPECT_EQ(failed.load(), 0) << failure;
  EXPECT_GE(answered.load(), 2);
  EXPECT_TRUE(Alive(first_enclaves[0])) << "the other kernel's enclave was killed";
  EXPECT_EQ(first.Get(first_id).value("state", ""), "ready");
  EXPECT_FALSE(Alive(second_enclaves[0])) << "the crashed kernel's own enclave is gone";
  EXPECT_EQ(
      second.process().log().find("orphaned enclave pid " + std::to_string(first_enclaves[0])),
      std::string::npos)
      << second.process().log();

  // The restarted kernel starts enclaves again, and its neighbour still answers.
  const std::string again = second.Ready({"orders"});
  auto rows = TunnelQuery(tunnel, "SELECT count(*) FROM orders");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], 4);
  EXPECT_EQ(second.Get(again).value("state", ""), "ready");
  EXPECT_EQ(first.process().Stop(), 0);
  EXPECT_EQ(second.process().Stop(), 0);
}

// A kernel whose environment holds the passwords of two sources starts an
// enclave for a request that pulls only the first: the enclave process never
// holds the second password, and holds the first only until it seals.
TEST_F(KernelInstancesE2E, AnEnclaveHoldsOnlyTheSecretsOfTheDatasetsItPulls) {
  const std::string password_a = "pw-a-" + RandomHex(16);
  const std::string password_b = "pw-b-" + RandomHex(16);
  ASSERT_EQ(::setenv("SRC_A_PASSWORD", password_a.c_str(), 1), 0);
  ASSERT_EQ(::setenv("SRC_B_PASSWORD", password_b.c_str(), 1), 0);
  const json connectors = {{"source_a",
                            {{"plugin", PluginPath("airlock_test_connector_chaos")},
                             {"config", {{"secret", "env:SRC_A_PASSWORD"}}}}},
                           {"source_b",
                            {{"plugin", PluginPath("airlock_test_connector_chaos")},
                             {"config", {{"secret", "env:SRC_B_PASSWORD"}}}}}};
  const json datasets = {{{"name", "a"}, {"connector", "source_a"}, {"object", "secret"}},
                         {{"name", "b"}, {"connector", "source_b"}, {"object", "secret"}}};
  Kernel kernel(root_.path() + "/k", Config("k", "", connectors, datasets));
  ASSERT_TRUE(kernel.Start());
  ::unsetenv("SRC_A_PASSWORD");
  ::unsetenv("SRC_B_PASSWORD");
  // What the enclave could have inherited: the kernel has both.
  const std::string kernel_environment =
      Slurp("/proc/" + std::to_string(kernel.process().pid()) + "/environ");
  ASSERT_NE(kernel_environment.find(password_a), std::string::npos);
  ASSERT_NE(kernel_environment.find(password_b), std::string::npos);

  const std::string id = kernel.Ready({"a"});
  EXPECT_TRUE(std::filesystem::is_directory(root_.path() + "/k/state/isolator"));
  const auto enclaves = EnclaveChildren(kernel.process().pid());
  ASSERT_EQ(enclaves.size(), 1u);
  const std::vector<std::string> environment = Environment(enclaves[0]);
  std::set<std::string> allowed = {"SRC_A_PASSWORD"};
#if defined(AIRLOCK_SANITIZED_BUILD)
  allowed.insert({"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"});
#endif
  std::string all;
  for (const std::string& entry : environment) {
    all += entry + "\n";
    const std::string name = entry.substr(0, entry.find('='));
    EXPECT_TRUE(allowed.count(name)) << "unexpected variable " << name << " in the enclave";
  }
  EXPECT_EQ(all.find(password_b), std::string::npos) << "another source's password";
  EXPECT_EQ(all.find(password_a), std::string::npos) << "its own password, after sealing";
  EXPECT_EQ(all.find("SRC_B_PASSWORD"), std::string::npos);

  // It did resolve its own: the connector saw the whole password.
  TunnelSession tunnel = kernel.OpenTunnel(id, pki_.ca.cert_file);
  auto rows = TunnelQuery(tunnel, "SELECT secret_length FROM a");
  ASSERT_EQ(rows.status, 200u) << rows.body;
  EXPECT_EQ(rows.json()["rows"][0][0], static_cast<int64_t>(password_a.size()));
  EXPECT_EQ(kernel.process().Stop(), 0);
}

}  // namespace
}  // namespace airlock::test
