// The `airlock` CLI as its users run it: the real binary against a real
// airlockd over TLS, each user with a configuration directory of their own.
// alice signs in (the token from stdin, never argv), asks and waits while bob
// approves from his own CLI, connects psql through the pgwire tunnel (the
// password in psql's environment, checked in /proc), queries, and bob
// revokes; errors are one line and a documented exit code.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/spawned.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

extern char** environ;

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_cli_alice_token_1";
constexpr const char* kBob = "alk_cli_bob_token_2";

std::string CliPath() {
  return std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The pid of a running psql whose command line names `needle`, or 0.
pid_t FindPsql(const std::string& needle) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    // (Debian's /usr/bin/psql is a wrapper that runs the versioned psql.)
    const std::string program = cmdline.substr(0, cmdline.find(' '));
    if (program.ends_with("psql") && cmdline.find(needle) != std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return 0;
}

class CliE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    const json identity = AliceAndBobIdentity(kAlice, kBob);
    json config = OrdersKernelConfig(dir_.path(), pki_, identity);
    config["server"]["tls"] = {{"certificate_file", pki_.server.cert_file},
                               {"private_key_file", pki_.server.key_file}};
    config["datasets"][0]["description"] = "Every order";
    Adjust(config);
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    server_ = "https://127.0.0.1:" + std::to_string(kernel_->port());
  }

  virtual void Adjust(json& config) { config["tunnel"] = PgwireTunnelRef(pki_); }

  std::string HomeOf(const std::string& user) { return dir_.path() + "/home-" + user; }

  std::map<std::string, std::string> EnvOf(const std::string& user) {
    return {{"AIRLOCK_CONFIG_DIR", HomeOf(user)},
            {"HOME", HomeOf(user)},
            {"PGGSSENCMODE", "disable"},
            {"PGCONNECT_TIMEOUT", "10"}};
  }

  std::unique_ptr<Spawned> Start(const std::string& user, std::vector<std::string> args,
                                 const std::string& input = "") {
    args.insert(args.begin(), CliPath());
    return std::make_unique<Spawned>(args, EnvOf(user), input);
  }

  // Runs the CLI as `user` to its end.
  std::unique_ptr<Spawned> Cli(const std::string& user, std::vector<std::string> args,
                               const std::string& input = "") {
    auto run = Start(user, std::move(args), input);
    EXPECT_NE(run->Finish(), -1) << "did not end: " << run->err();
    return run;
  }

  void Login(const std::string& user, const char* token) {
    auto login = Cli(user, {"login", "--server", server_, "--ca-file", pki_.ca.cert_file},
                     std::string(token) + "\n");
    ASSERT_EQ(login->Finish(), 0) << login->err();
    EXPECT_NE(login->out().find("Signed in to " + server_ + " as " + user), std::string::npos)
        << login->out();
  }

  // alice asks for orders and waits; bob approves from his CLI meanwhile.
  std::string AskedAndApproved() {
    auto waiting = Start("alice", {"request", "orders", "--for", "10m", "--reason", "q3 numbers",
                                   "--wait", "--json"});
    std::string id;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (id.empty() && std::chrono::steady_clock::now() < deadline) {
      auto pending = Cli("bob", {"requests", "--pending", "--json"});
      const json listed = json::parse(pending->out(), nullptr, false);
      if (listed.is_object() && !listed["requests"].empty()) id = listed["requests"][0]["id"];
      if (id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_FALSE(id.empty()) << "bob never saw alice's ask";
    auto approved = Cli("bob", {"approve", id, "--comment", "fine"});
    EXPECT_EQ(approved->Finish(), 0) << approved->err();
    EXPECT_NE(approved->out().find(id + " is now approved"), std::string::npos) << approved->out();
    EXPECT_EQ(waiting->Finish(), 0) << waiting->err();
    EXPECT_EQ(json::parse(waiting->out(), nullptr, false).value("state", ""), "ready")
        << waiting->out();
    // The steps went by on stderr.
    EXPECT_NE(waiting->err().find(id + ": pending_approval"), std::string::npos) << waiting->err();
    EXPECT_NE(waiting->err().find(id + ": ready"), std::string::npos) << waiting->err();
    return id;
  }

  TempDir dir_{"airlock-cli-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::string server_;
};

TEST_F(CliE2E, FromLoginToRevokeWithPsqlThroughThePgwireTunnel) {
  // A token the kernel refuses is not kept: one line, exit 3.
  auto refused = Cli("mallory", {"login", "--server", server_, "--ca-file", pki_.ca.cert_file},
                     "alk_not_a_token\n");
  EXPECT_EQ(refused->Finish(), 3);
  EXPECT_EQ(refused->err(), "airlock: the server did not accept that token\n");
  EXPECT_FALSE(std::filesystem::exists(HomeOf("mallory") + "/config.json"));
  // Nor a server whose certificate is not trusted: exit 7.
  auto untrusted = Cli("mallory", {"login", "--server", server_}, std::string(kAlice) + "\n");
  EXPECT_EQ(untrusted->Finish(), 7) << untrusted->err();

  Login("alice", kAlice);
  Login("bob", kBob);
  struct stat info {};
  ASSERT_EQ(::stat((HomeOf("alice") + "/config.json").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(HomeOf("alice").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);

  auto who = Cli("alice", {"whoami"});
  EXPECT_EQ(who->out().rfind("alice (", 0), 0u) << who->out();
  auto datasets = Cli("alice", {"datasets"});
  ASSERT_EQ(datasets->Finish(), 0) << datasets->err();
  EXPECT_NE(datasets->out().find("orders   Every order"), std::string::npos) << datasets->out();
  EXPECT_NE(datasets->out().find("needs approval by owners"), std::string::npos);

  // Unknown data: one line, exit 5; bad usage: exit 2.
  auto unknown = Cli("alice", {"request", "salaries", "--reason", "x"});
  EXPECT_EQ(unknown->Finish(), 5);
  EXPECT_EQ(unknown->err(), "airlock: unknown dataset(s): salaries\n");
  EXPECT_EQ(Cli("alice", {"request", "orders", "--for", "soon"})->Finish(), 2);
  EXPECT_EQ(Cli("alice", {"approve"})->Finish(), 2);

  const std::string id = AskedAndApproved();

  // connect --print: shell settings; psql with them in its environment.
  auto printed = Cli("alice", {"connect", id, "--print"});
  ASSERT_EQ(printed->Finish(), 0) << printed->err();
  std::map<std::string, std::string> settings;
  const std::regex line("export (PG[A-Z]+)='([^']*)'");
  for (std::sregex_iterator it(printed->out().begin(), printed->out().end(), line), end; it != end;
       ++it) {
    settings[(*it)[1]] = (*it)[2];
  }
  ASSERT_EQ(settings.size(), 6u) << printed->out();
  const std::string credential = settings["PGPASSWORD"];
  ASSERT_GT(credential.size(), 10u);
  std::map<std::string, std::string> psql_env = settings;
  psql_env["PGGSSENCMODE"] = "disable";
  Spawned psql({"psql", "-X", "-A", "-t", "-c", "SELECT COUNT(*) FROM orders"}, psql_env, "");
  EXPECT_EQ(psql.Finish(), 0) << psql.err();
  EXPECT_EQ(psql.out(), "2\n");
  // The grant is kept for later calls, readable by alice alone.
  ASSERT_EQ(::stat((HomeOf("alice") + "/grants/" + id + ".json").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  // connect starts psql itself: the password is in its environment, never
  // in its arguments.
  // (psql sleeps a second first, so that it can be looked at.)
  auto connected = Start(
      "alice", {"connect", id, "--", "-X", "-A", "-t", "-c", "\\! sleep 1", "-c", "SELECT 41 + 1"});
  pid_t psql_pid = 0;
  for (int i = 0; i < 200 && psql_pid == 0; ++i) {
    psql_pid = FindPsql(id);
    if (psql_pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (psql_pid == 0) {
    const int code = connected->Finish();
    FAIL() << "psql was not seen; connect ended with " << code << ": " << connected->err()
           << connected->out();
  }
  const std::string cmdline = ReadFile("/proc/" + std::to_string(psql_pid) + "/cmdline");
  EXPECT_EQ(cmdline.find(credential), std::string::npos);
  EXPECT_EQ(cmdline.find(kAlice), std::string::npos);
  const std::string environ_text = ReadFile("/proc/" + std::to_string(psql_pid) + "/environ");
  EXPECT_NE(environ_text.find("PGPASSWORD=" + credential), std::string::npos);
  EXPECT_EQ(connected->Finish(), 0) << connected->err();
  EXPECT_EQ(connected->out(), "42\n");

  auto csv = Cli("alice", {"query", id, "SELECT order_id, amount FROM orders ORDER BY order_id",
                           "--format", "csv"});
  EXPECT_EQ(csv->Finish(), 0) << csv->err();
  EXPECT_EQ(csv->out(), "order_id,amount\n1,10\n2,20\n");

  // bob revokes; the tunnel refuses alice from then on.
  auto revoked = Cli("bob", {"revoke", id, "--comment", "done"});
  EXPECT_EQ(revoked->Finish(), 0) << revoked->err();
  EXPECT_NE(revoked->out().find(id + " is now closed"), std::string::npos) << revoked->out();
  EXPECT_NE(Cli("alice", {"query", id, "SELECT 1"})->Finish(), 0);
  // Deciding again is a conflict: exit 6, one line.
  auto again = Cli("bob", {"approve", id});
  EXPECT_EQ(again->Finish(), 6);
  EXPECT_EQ(std::count(again->err().begin(), again->err().end(), '\n'), 1) << again->err();

  // The audit, searched from the CLI, holds it all.
  auto audit = Cli("bob", {"audit", "search", "--request", id, "--json", "--all"});
  ASSERT_EQ(audit->Finish(), 0) << audit->err();
  std::vector<std::string> events;
  const json found = json::parse(audit->out());
  for (const auto& r : found["records"]) events.push_back(r["event"]);
  for (const char* event :
       {"request.submitted", "request.approved", "tunnel.credential_issued", "request.closed"}) {
    EXPECT_NE(std::find(events.begin(), events.end(), event), events.end()) << event;
  }
  EXPECT_EQ(events.back(), "request.submitted");  // newest first

  // Signing out forgets the token and the kept grants.
  EXPECT_EQ(Cli("alice", {"logout"})->Finish(), 0);
  EXPECT_FALSE(std::filesystem::exists(HomeOf("alice") + "/grants/" + id + ".json"));
  auto gone = Cli("alice", {"requests"});
  EXPECT_EQ(gone->Finish(), 3);
  EXPECT_EQ(gone->err(), "airlock: not signed in: airlock login\n");
}

class CliHttpsE2E : public CliE2E {
  void Adjust(json& config) override { config["tunnel"] = HttpsTunnelRef(pki_); }
};

TEST_F(CliHttpsE2E, QueriesAsTableCsvAndJsonAndAnEndedWindowIsOneLine) {
  Login("alice", kAlice);
  Login("bob", kBob);
  const std::string id = AskedAndApproved();
  const std::string sql = "SELECT order_id, amount FROM orders ORDER BY order_id";
  auto table = Cli("alice", {"query", id, sql});
  ASSERT_EQ(table->Finish(), 0) << table->err();
  EXPECT_EQ(table->out(), "order_id  amount\n1         10\n2         20\n(2 rows)\n");
  auto csv = Cli("alice", {"query", id, sql, "--format", "csv"});
  EXPECT_EQ(csv->out(), "order_id,amount\n1,10\n2,20\n");
  auto as_json = Cli("alice", {"query", id, sql, "--json"});
  EXPECT_EQ(json::parse(as_json->out())["rows"], json({{1, 10}, {2, 20}})) << as_json->out();
  // connect on an HTTPS tunnel says where the explorer is.
  EXPECT_NE(Cli("alice", {"connect", id})->out().find("/t/" + id + "/"), std::string::npos);

  // A window that ended: the tunnel says so, in one line, exit 6.
  auto short_ask =
      Start("alice", {"request", "orders", "--for", "3s", "--reason", "brief", "--json"});
  ASSERT_EQ(short_ask->Finish(), 0) << short_ask->err();
  const std::string brief = json::parse(short_ask->out()).value("id", "");
  ASSERT_EQ(Cli("bob", {"approve", brief})->Finish(), 0);
  ASSERT_EQ(Cli("alice", {"wait", brief})->Finish(), 0);
  ASSERT_EQ(Cli("alice", {"connect", brief, "--print"})->Finish(), 0);  // grant kept
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (json::parse(Cli("alice", {"show", brief, "--json"})->out()).value("state", "") !=
             "expired" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  auto ended = Cli("alice", {"query", brief, "SELECT 1"});
  EXPECT_EQ(ended->Finish(), 6) << ended->err();
  EXPECT_EQ(std::count(ended->err().begin(), ended->err().end(), '\n'), 1) << ended->err();
  EXPECT_NE(ended->err().find("window"), std::string::npos) << ended->err();
  // Waiting on it now: it ended without access, exit 8.
  EXPECT_EQ(Cli("alice", {"wait", brief})->Finish(), 8);
}

// Sites from the CLI: anyone lists them, admins suspend and resume one,
// and an ask for a suspended site's data is refused with the reason.
class CliSitesE2E : public CliE2E {
 protected:
  void Adjust(json& config) override {
    CliE2E::Adjust(config);
    config["access"] = {{"admin_groups", {"owners"}}};
    config["connectors"]["edge_files"] = {{"plugin", PluginPath("airlock_connector_files")},
                                          {"agent", "edge"},
                                          {"config", {{"root", dir_.path() + "/data"}}}};
    config["datasets"].push_back({{"name", "edge_orders"}, {"connector", "edge_files"}});
    config["agents"] = {
        {"listen_address", "127.0.0.1"},
        {"port", 0},
        {"agents", {{"edge", {{"enrollment_token_sha256", std::string(64, 'a')}}}}}};
  }
};

TEST_F(CliSitesE2E, AdminsSuspendAndResumeASite) {
  Login("alice", kAlice);
  Login("bob", kBob);
  auto listed = Cli("alice", {"sites"});
  ASSERT_EQ(listed->Finish(), 0) << listed->err();
  EXPECT_NE(listed->out().find("edge"), std::string::npos) << listed->out();
  EXPECT_NE(listed->out().find("never_connected"), std::string::npos) << listed->out();

  // Only admins, and only with a reason.
  auto not_admin = Cli("alice", {"sites", "suspend", "edge", "--reason", "no"});
  EXPECT_EQ(not_admin->Finish(), 4) << not_admin->err();
  EXPECT_EQ(Cli("bob", {"sites", "suspend", "edge"})->Finish(), 2);
  EXPECT_EQ(Cli("bob", {"sites", "suspend", "nowhere", "--reason", "x"})->Finish(), 5);

  auto suspended = Cli("bob", {"sites", "suspend", "edge", "--reason", "patching the host"});
  ASSERT_EQ(suspended->Finish(), 0) << suspended->err();
  EXPECT_NE(suspended->out().find("Site edge suspended; 0 request(s) closed"), std::string::npos)
      << suspended->out();
  auto shown = Cli("alice", {"sites"});
  EXPECT_NE(shown->out().find("suspended"), std::string::npos) << shown->out();
  EXPECT_NE(shown->out().find("patching the host (bob"), std::string::npos) << shown->out();
  auto refused = Cli("alice", {"request", "edge_orders", "--reason", "look"});
  EXPECT_EQ(refused->Finish(), 4) << refused->err();
  EXPECT_NE(refused->err().find("site 'edge' is suspended by bob: patching the host"),
            std::string::npos)
      << refused->err();
  EXPECT_EQ(Cli("bob", {"sites", "suspend", "edge", "--reason", "again"})->Finish(), 6);

  auto resumed = Cli("bob", {"sites", "resume", "edge", "--reason", "done", "--json"});
  ASSERT_EQ(resumed->Finish(), 0) << resumed->err();
  EXPECT_EQ(json::parse(resumed->out()).value("status", ""), "resumed") << resumed->out();
  auto listed_json = Cli("alice", {"sites", "--json"});
  ASSERT_EQ(listed_json->Finish(), 0);
  EXPECT_FALSE(json::parse(listed_json->out())["agents"][0].contains("suspension"))
      << listed_json->out();
}

TEST(CliCompletion, BashCompletionIsAValidScriptNamingEveryCommand) {
  TempDir dir("airlock-cli-completion-");
  Spawned bash_script({CliPath(), "completion", "bash"}, {}, "");
  ASSERT_EQ(bash_script.Finish(), 0);
  for (const char* command :
       {"login", "request", "approve", "connect", "query", "audit", "sites", "suspend"}) {
    EXPECT_NE(bash_script.out().find(command), std::string::npos) << command;
  }
  std::ofstream(dir.path() + "/airlock.bash") << bash_script.out();
  Spawned check({"bash", "-n", dir.path() + "/airlock.bash"}, {}, "");
  EXPECT_EQ(check.Finish(), 0) << check.err();
  Spawned zsh_script({CliPath(), "completion", "zsh"}, {}, "");
  ASSERT_EQ(zsh_script.Finish(), 0);
  EXPECT_EQ(zsh_script.out().rfind("#compdef airlock", 0), 0u);
  Spawned bad({CliPath(), "completion", "fish"}, {}, "");
  EXPECT_EQ(bad.Finish(), 2);
}

}  // namespace
}  // namespace airlock::test
