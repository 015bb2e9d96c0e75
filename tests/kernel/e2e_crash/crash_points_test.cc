// Crash points: a real airlockd (process isolator, HTTPS tunnel, two small
// CSV datasets) is killed with SIGKILL right after each audited step of a
// request's life in turn — not at random — and restarted on the same state
// directory. The kill is deterministic: the kernel is built with
// AIRLOCK_FAULT_INJECTION and started with AIRLOCK_FAULT_KILL_AFTER_AUDIT
// (kernel/audit/fault_injection.h), so it dies right after the chosen record
// is durable and before anyone waiting on it is answered.
//
// After every restart the test checks, over every request made so far:
//  * the request killed in this round is in the state docs/architecture.md
//    ("On start the kernel reconciles") gives for the state it was stored in;
//  * the state store (GET /v1/requests) and the audit log agree: replaying
//    each request's audited transitions gives its stored state, where a
//    transition audited by a kernel that was killed before answering may not
//    have taken effect (the audit record is written first), and nothing else;
//  * every transition a client was answered for, or saw, is in the log;
//  * `airlockd audit verify` passes;
//  * no airlock-enclave process outlives its request: every enclave the
//    killed kernel started is gone (this test is their child subreaper, so
//    orphans would be re-parented to it), and the restarted kernel's enclaves
//    are exactly one per ready request, each named in an isolator record.
#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
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

constexpr const char* kAlice = "alk_crash_alice_token";
constexpr const char* kBob = "alk_crash_bob_token";
constexpr const char* kCarol = "alk_crash_carol_token";
constexpr auto kSettle = std::chrono::seconds(30);

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// What a round does with its request; the kernel may die at any step.
enum class Drive {
  kInteractive,  // ask, approve, ready, collect the credential, query, revoke
  kDeny,         // ask, deny
  kFailing,      // ask for a dataset whose file is missing, approve: fails
};

struct CrashPoint {
  const char* event;  // AIRLOCK_FAULT_KILL_AFTER_AUDIT=<event>:1
  Drive drive;
  // The round's request after the restart: a state, or "" for "does not
  // exist" (killed before the store had it: it was never acknowledged).
  const char* after_restart;
  // Also kill the first restart right after this record (a crash during
  // recovery); the second restart must then finish the job.
  const char* recovery_event = nullptr;
};

// One round per audited step of the lifecycles, in the order they happen.
const CrashPoint kCrashPoints[] = {
    {"request.submitted", Drive::kInteractive, ""},
    {"request.pending_approval", Drive::kInteractive, ""},
    {"request.approved", Drive::kInteractive, "pending_approval"},
    {"request.provisioning", Drive::kInteractive, "ready"},  // stored approved: provisioned again
    {"enclave.provisioned", Drive::kInteractive, "failed"},
    {"request.ingesting", Drive::kInteractive, "failed"},  // stored provisioning
    {"enclave.pull_done", Drive::kInteractive, "failed"},
    {"enclave.sealed", Drive::kInteractive, "failed"},
    {"request.ready", Drive::kInteractive, "failed"},  // stored ingesting
    {"tunnel.opened", Drive::kInteractive, "closed"},
    {"tunnel.credential_issued", Drive::kInteractive, "closed"},
    {"tunnel.query", Drive::kInteractive, "closed"},
    {"request.closed", Drive::kInteractive, "closed"},  // revoke unanswered: stored ready
    {"tunnel.closed", Drive::kInteractive, "closed"},
    {"enclave.destroyed", Drive::kInteractive, "closed"},
    {"request.denied", Drive::kDeny, "pending_approval"},
    {"request.failed", Drive::kFailing, "failed"},  // stored ingesting: failed by recovery
    // Killed while ready, then again while recovery closes it.
    {"tunnel.query", Drive::kInteractive, "closed", "request.closed"},
};

// Seq of the last record in the audit file (0 when empty).
uint64_t LastSeq(const std::string& audit_path) {
  std::istringstream lines(Slurp(audit_path));
  uint64_t last = 0;
  for (std::string line; std::getline(lines, line);) {
    const json record = json::parse(line, nullptr, false);
    if (record.is_object()) last = record.value("seq", last);
  }
  return last;
}

class CrashPoints : public ::testing::Test {
 protected:
  void SetUp() override {
    // Enclaves orphaned by a killed kernel are re-parented to this process,
    // so the test sees (and reaps) every enclave its kernels started.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    pki_ = GenerateTestPki(dir_.path());
    const std::string dir = dir_.path();
    std::filesystem::create_directories(dir + "/data");
    std::ofstream(dir + "/data/customers.csv") << "id,name,country\n1,Ada,GB\n2,Grace,US\n";
    std::ofstream(dir + "/data/orders.csv")
        << "order_id,customer_id,amount\n10,1,100.5\n11,1,20\n12,2,7.25\n";
    json policy = AnalystsPolicy({"*"});
    json identity = AliceAndBobIdentity(kAlice, kBob);
    identity[0]["config"]["tokens"].push_back(TokenEntry(kCarol, "carol", "admins"));
    json config = {
        {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
        {"state_dir", dir + "/state"},
        {"identity", identity},
        {"policy", RulesPolicyRef(policy)},
        {"isolator",
         ProcessIsolatorRef(enclave_dir(), {"pid_namespace", "network_namespace", "no_new_privs"})},
        {"tunnel", HttpsTunnelRef(pki_)},
        {"connectors",
         {{"files",
           {{"plugin", PluginPath("airlock_connector_files")},
            {"config", {{"root", dir + "/data"}}}}}}},
        {"datasets",
         {{{"name", "customers"}, {"connector", "files"}, {"object", "customers.csv"}},
          {{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}},
          {{"name", "ghost"}, {"connector", "files"}, {"object", "ghost.csv"}}}},
        {"access", {{"admin_groups", {"admins"}}, {"reviewer_groups", {"owners"}}}},
        // The checks count the enclaves of requests; the catalog's describe
        // enclave at every start would be one more (CatalogE2E covers it).
        {"catalog", {{"describe", false}}}};
    kernel_ = std::make_unique<KernelProcess>(dir, config);
  }

  void TearDown() override {
    kernel_.reset();
    // Nothing of ours may outlive the test.
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!EnclaveChildren(::getpid()).empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (pid_t pid : EnclaveChildren(::getpid())) {
      ADD_FAILURE() << "enclave " << pid << " outlived its kernels";
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  std::string enclave_dir() const { return dir_.path() + "/enclaves"; }
  std::string audit_path() const { return dir_.path() + "/state/audit.log"; }

  bool StartKernel(const char* kill_after_event) {
    std::vector<std::string> env;
    if (kill_after_event != nullptr) {
      env.push_back(std::string("AIRLOCK_FAULT_KILL_AFTER_AUDIT=") + kill_after_event + ":1");
    }
    kernel_->set_extra_environment(std::move(env));
    if (!kernel_->Start()) return false;
    api_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
    api_->set_timeout(std::chrono::seconds(10));
    return true;
  }

  // The kernel must die by its crash point; records what it left unanswered.
  void ExpectKilledAt(const std::string& event) {
    const int status = kernel_->WaitForExit(kSettle);
    ASSERT_NE(status, -1) << "the kernel never reached its crash point after " << event << "\n"
                          << kernel_->log();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status << "\n"
                                                                    << kernel_->log();
    const std::string log = kernel_->log();
    static const std::regex kLine(R"(fault injection: SIGKILL after audit seq=(\d+) event=(\S+))");
    std::smatch m;
    int kills = 0;  // the log holds every start's lines: the last one is this kernel's
    for (auto it = std::sregex_iterator(log.begin(), log.end(), kLine);
         it != std::sregex_iterator(); ++it) {
      m = *it;
      ++kills;
    }
    ASSERT_EQ(kills, ++kills_) << "this kernel did not say where it was killed\n" << log;
    ASSERT_EQ(m[2].str(), event);
    const uint64_t killed_at = std::stoull(m[1].str());
    // Everything from the killed record to the end of the log was written
    // by the dying kernel after (or in the same group as) that record:
    // durable, never answered.
    unanswered_.emplace_back(killed_at, LastSeq(audit_path()));
    api_.reset();
  }

  void Note(const std::string& id, const std::string& event) {
    if (!id.empty()) acknowledged_[id].insert(event);
  }

  // Polls the request until it is in `states`, the kernel dies, or time runs out.
  std::string Await(const std::string& id, const std::set<std::string>& states) {
    const auto deadline = Clock::now() + kSettle;
    std::string state;
    while (Clock::now() < deadline) {
      auto r = api_->Get("/v1/requests/" + id, Auth(kAlice));
      if (r.status == 0) return "";  // the kernel is gone
      state = r.json().value("state", "");
      if (!state.empty()) Note(id, "request." + state);
      if (states.count(state)) return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return state;
  }

  // Walks one request through `drive` until the kernel dies. Every step the
  // kernel answers is recorded as acknowledged. Returns the request's id
  // ("" if the kernel died before answering the ask).
  std::string DriveUntilKilled(Drive drive, std::string* id_out) {
    const json ask = {
        {"datasets", drive == Drive::kFailing ? json{"ghost"} : json{"customers", "orders"}},
        {"window_seconds", 600},
        {"purpose", "crash points"}};
    auto created = api_->Post("/v1/requests", ask.dump(), Auth(kAlice));
    if (created.status == 0) return "";
    EXPECT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    *id_out = id;
    Note(id, "request." + created.json().value("state", ""));
    if (drive == Drive::kDeny) {
      auto denied = api_->Post("/v1/requests/" + id + "/deny", "{}", Auth(kBob));
      if (denied.status == 200) Note(id, "request.denied");
      return id;
    }
    auto approved = api_->Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob));
    if (approved.status == 0) return id;
    EXPECT_EQ(approved.status, 200u) << approved.body;
    Note(id, "request.approved");
    const std::string state = Await(id, {"ready", "failed"});
    if (state != "ready") return id;
    ClientResponse grant;
    TunnelSession tunnel = ConnectTunnel(*api_, id, Auth(kAlice), pki_.ca.cert_file, &grant);
    if (grant.status != 200) return id;
    Note(id, "tunnel.credential_issued");
    auto rows = TunnelQuery(tunnel, "SELECT count(*) FROM orders");
    if (rows.status != 200) return id;
    Note(id, "tunnel.query");
    auto revoked = api_->Post("/v1/requests/" + id + "/revoke", "{}", Auth(kAlice));
    if (revoked.status == 200) Note(id, "request.closed");
    return id;
  }

  // Every request the kernel knows, as carol (an admin sees all).
  std::map<std::string, json> ListAll() {
    std::map<std::string, json> all;
    std::string token;
    for (int page = 0; page < 100; ++page) {
      auto r = api_->Get("/v1/requests?limit=100" + (token.empty() ? "" : "&page_token=" + token),
                         Auth(kCarol));
      EXPECT_EQ(r.status, 200u) << r.body;
      const json body = r.json();
      for (const json& request : body.value("requests", json::array())) {
        all[request.value("id", "")] = request;
      }
      token = body.value("next_page_token", "");
      if (token.empty()) break;
    }
    return all;
  }

  // Waits until no request is on its way to ready (a resumed provisioning).
  std::map<std::string, json> Settled() {
    const auto deadline = Clock::now() + kSettle;
    for (;;) {
      auto all = ListAll();
      bool moving = false;
      for (const auto& [id, r] : all) {
        const std::string s = r.value("state", "");
        moving |= s == "approved" || s == "provisioning" || s == "ingesting";
      }
      if (!moving || Clock::now() > deadline) return all;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Enclaves: none left from the killed kernel; one per ready request under
  // the running kernel, each named in an isolator record.
  void CheckEnclaves(const std::map<std::string, json>& requests) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!EnclaveChildren(::getpid()).empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(EnclaveChildren(::getpid()).empty())
        << "an enclave of the killed kernel survived it";
    std::set<std::string> ready;
    for (const auto& [id, r] : requests) {
      if (r.value("state", "") == "ready") ready.insert(id);
    }
    // The isolator's pid -> request, from every kernel instance's records
    // (<state_dir>/instance-<id>/<pid>.json).
    std::map<pid_t, std::string> records;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(enclave_dir())) {
      static const std::regex kRecord(R"((\d+)\.json)");
      const std::string name = entry.path().filename().string();
      if (!std::regex_match(name, kRecord)) continue;
      const json record = json::parse(Slurp(entry.path().string()), nullptr, false);
      records[static_cast<pid_t>(std::stol(name))] =
          record.is_object() ? record.value("request_id", "") : "";
    }
    const std::vector<pid_t> live = EnclaveChildren(kernel_->pid());
    EXPECT_EQ(live.size(), ready.size()) << "one enclave per ready request";
    EXPECT_EQ(records.size(), live.size()) << "one isolator record per live enclave";
    for (pid_t pid : live) {
      auto record = records.find(pid);
      ASSERT_NE(record, records.end()) << "enclave " << pid << " has no isolator record";
      EXPECT_TRUE(ready.count(record->second))
          << "enclave " << pid << " serves " << record->second << ", which is not ready";
    }
  }

  bool Unanswered(uint64_t seq) const {
    for (const auto& [from, to] : unanswered_) {
      if (seq >= from && seq <= to) return true;
    }
    return false;
  }

  // The audit log against the stored states (the kernel is stopped).
  void CheckAuditAgainst(const std::map<std::string, json>& requests) {
    std::string output;
    EXPECT_EQ(RunAirlockd({"audit", "verify", audit_path()}, &output), 0) << output;

    std::map<std::string, std::vector<json>> transitions;
    std::map<std::string, std::set<std::string>> events;
    std::istringstream lines(Slurp(audit_path()));
    for (std::string line; std::getline(lines, line);) {
      const json record = json::parse(line, nullptr, false);
      ASSERT_TRUE(record.is_object()) << line;
      const std::string id = record.value("request_id", "");
      if (id.empty()) continue;
      events[id].insert(record.value("event", ""));
      if (record.contains("from") && record.contains("to") &&
          record.value("event", "").rfind("request.", 0) == 0) {
        transitions[id].push_back(record);
      }
    }
    for (const auto& [id, records] : transitions) {
      std::string state;  // "" until the request is stored
      for (const json& t : records) {
        const std::string from = t.value("from", ""), to = t.value("to", "");
        EXPECT_EQ(from, state.empty() ? "evaluating" : state)
            << id << ": audited transition seq " << t.value("seq", 0) << " starts from " << from
            << " but the request was " << (state.empty() ? "not stored" : state);
        // Audited first, stored second: an unanswered one never took effect.
        if (!Unanswered(t.value("seq", uint64_t{0}))) state = to;
      }
      auto stored = requests.find(id);
      if (state.empty()) {
        EXPECT_EQ(stored, requests.end()) << id << " is stored but was never acknowledged";
      } else {
        ASSERT_NE(stored, requests.end())
            << id << " was acknowledged as " << state << " but is not stored";
        EXPECT_EQ(stored->second.value("state", ""), state)
            << id << ": the store and the audit log disagree";
      }
    }
    for (const auto& [id, r] : requests) {
      EXPECT_TRUE(transitions.count(id)) << id << " is stored but was never audited";
    }
    for (const auto& [id, acked] : acknowledged_) {
      for (const std::string& event : acked) {
        EXPECT_TRUE(events[id].count(event))
            << id << ": " << event << " was acknowledged but is not in the audit log";
      }
    }
  }

  // Ready requests are revoked before the next round, so that the next
  // kernel's recovery emits nothing its crash point could match.
  void CloseReady(const std::map<std::string, json>& requests) {
    for (const auto& [id, r] : requests) {
      if (r.value("state", "") != "ready") continue;
      auto revoked = api_->Post("/v1/requests/" + id + "/revoke", "{}", Auth(kCarol));
      EXPECT_EQ(revoked.status, 200u) << revoked.body;
      Note(id, "request.closed");
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!EnclaveChildren(kernel_->pid()).empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  TempDir dir_{"airlock-crash-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> api_;
  std::vector<std::pair<uint64_t, uint64_t>> unanswered_;  // seq ranges
  std::map<std::string, std::set<std::string>> acknowledged_;
  int kills_ = 0;  // crash points reached so far
};

TEST_F(CrashPoints, EveryAuditedStepSurvivesAKillAndARestart) {
  for (const CrashPoint& point : kCrashPoints) {
    SCOPED_TRACE(std::string("killed after ") + point.event +
                 (point.recovery_event
                      ? std::string(", then after ") + point.recovery_event + " during recovery"
                      : std::string()));
    ASSERT_TRUE(StartKernel(point.event)) << kernel_->log();
    std::string id;
    DriveUntilKilled(point.drive, &id);
    ASSERT_NO_FATAL_FAILURE(ExpectKilledAt(point.event));

    if (point.recovery_event != nullptr) {
      // Recovery runs before the kernel listens: this start never succeeds.
      EXPECT_FALSE(StartKernel(point.recovery_event));
      ASSERT_NO_FATAL_FAILURE(ExpectKilledAt(point.recovery_event));
    }
    ASSERT_TRUE(StartKernel(nullptr)) << kernel_->log();
    const std::map<std::string, json> settled = Settled();
    if (*point.after_restart == '\0') {
      EXPECT_TRUE(id.empty() || !settled.count(id)) << id << " should not exist";
      // The ask was never answered, so its id is known only from the log.
    } else {
      ASSERT_FALSE(id.empty()) << "the kernel died before answering the ask";
      ASSERT_TRUE(settled.count(id)) << id;
      EXPECT_EQ(settled.at(id).value("state", ""), point.after_restart) << settled.at(id).dump();
    }
    CheckEnclaves(settled);
    CloseReady(settled);
    const std::map<std::string, json> final_states = ListAll();
    EXPECT_EQ(kernel_->Stop(), 0) << kernel_->log();
    CheckAuditAgainst(final_states);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace airlock::test
