// `airlockd check-config` against the real binary and the real plugins: every
// configuration `serve` refuses is refused by check-config too, with a message
// naming the file or the key, and check-config starts nothing (a port held by
// someone else does not bother it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

// A configuration serve accepts: static tokens, the rules policy, the
// inprocess isolator, the HTTPS tunnel over TLS, the files connector.
json GoodConfig(const std::string& dir, const TestPki& pki) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/orders.csv") << "id,amount\n1,10\n";
  json policy = {{"version", 1},
                 {"rules",
                  {{{"name", "analysts"},
                    {"effect", "allow"},
                    {"subjects", {{"groups", {"analysts"}}}},
                    {"datasets", {"orders"}}}}}};
  return {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
      {"state_dir", dir + "/state"},
      {"identity", AliceAndBobIdentity("alk_check_alice", "alk_check_bob")},
      {"policy", RulesPolicyRef(policy)},
      {"isolator", {{"name", "inprocess"}, {"plugin", PluginPath("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", PluginPath("airlock_connector_files")},
          {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets", {{{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}}}}};
}

struct BrokenCase {
  std::string name;
  // Breaks the good configuration (may write files under `dir`).
  std::function<void(json& config, const std::string& dir, const TestPki& pki)> breaks;
  // Both commands' messages contain every one of these.
  std::vector<std::string> named;
};

// gtest names a case by its name rather than its bytes.
void PrintTo(const BrokenCase& c, std::ostream* os) {
  *os << c.name;
}

// A copy of a built plugin in `dir`, with `mode`.
std::string CopyPlugin(const std::string& dir, const std::string& name, mode_t mode) {
  const std::string copy = dir + "/" + name + "-copy.so";
  std::filesystem::copy_file(PluginPath(name), copy,
                             std::filesystem::copy_options::overwrite_existing);
  ::chmod(copy.c_str(), mode);
  return copy;
}

std::vector<BrokenCase> BrokenCases() {
  const std::string zeros(64, '0');
  return {
      {"identity_plugin_file_missing",
       [](json& c, const std::string& dir, const TestPki&) {
         c["identity"][0]["plugin"] = dir + "/no_such_identity.so";
       },
       {"identity plugin 'tokens'", "no_such_identity.so"}},
      {"policy_plugin_file_missing",
       [](json& c, const std::string& dir, const TestPki&) {
         c["policy"]["plugin"] = dir + "/no_such_policy.so";
       },
       {"no_such_policy.so"}},
      {"policy_plugin_in_identity_slot",
       [](json& c, const std::string&, const TestPki&) {
         c["identity"][0]["plugin"] = PluginPath("airlock_policy_rules");
       },
       {"airlock_policy_rules.so", "is a policy plugin, expected an identity plugin"}},
      {"tunnel_plugin_in_isolator_slot",
       [](json& c, const std::string&, const TestPki&) {
         c["isolator"]["plugin"] = PluginPath("airlock_tunnel_https");
       },
       {"airlock_tunnel_https.so", "expected an isolator plugin"}},
      {"identity_plugin_in_connector_slot",
       [](json& c, const std::string&, const TestPki&) {
         c["connectors"]["files"]["plugin"] = PluginPath("airlock_identity_static_tokens");
       },
       {"connector 'files'", "airlock_identity_static_tokens.so", "expected a connector plugin"}},
      {"connector_file_missing",
       [](json& c, const std::string& dir, const TestPki&) {
         c["connectors"]["files"]["plugin"] = dir + "/no_such_connector.so";
       },
       {"connector 'files'", "no_such_connector.so"}},
      {"plugin_writable_by_others",
       [](json& c, const std::string& dir, const TestPki&) {
         c["policy"]["plugin"] = CopyPlugin(dir, "airlock_policy_rules", 0666);
       },
       {"airlock_policy_rules-copy.so", "writable"}},
      {"plugin_pin_mismatch",
       [zeros](json& c, const std::string&, const TestPki&) { c["tunnel"]["sha256"] = zeros; },
       {"airlock_tunnel_https.so", "SHA-256"}},
      {"connector_pin_mismatch",
       [zeros](json& c, const std::string&, const TestPki&) {
         c["connectors"]["files"]["sha256"] = zeros;
       },
       {"connector 'files'", "SHA-256 pin"}},
      {"identity_setting_unknown_key",
       [](json& c, const std::string&, const TestPki&) {
         c["identity"][0]["config"]["token"] = json::array();
       },
       {"identity plugin 'tokens' config.token", "is not a setting this plugin knows"}},
      // Connectors run only in enclaves: their configuration is checked
      // against the schema their manifest declares (read by the probe) at
      // start, not when a pull fails after a human approved.
      {"connector_setting_unknown_key",
       [](json& c, const std::string& dir, const TestPki&) {
         c["connectors"]["files"]["config"]["rooot"] = dir + "/data";
       },
       {"connector 'files' config.rooot", "is not a setting this plugin knows"}},
      {"connector_setting_out_of_range",
       [](json& c, const std::string&, const TestPki&) {
         c["connectors"]["files"]["config"]["batch_rows"] = 0;
       },
       {"connector 'files' config.batch_rows", "must be at least 1"}},
      {"identity_token_hash_malformed",
       [](json& c, const std::string&, const TestPki&) {
         c["identity"][0]["config"]["tokens"][0]["sha256"] = "not-a-hash";
       },
       {"identity plugin 'tokens'", "tokens[0]"}},
      {"policy_rule_without_effect",
       [](json& c, const std::string&, const TestPki&) {
         c["policy"]["config"]["rules"][0].erase("effect");
       },
       {"policy plugin", "effect"}},
      {"isolator_unknown_key",
       [](json& c, const std::string&, const TestPki&) {
         c["isolator"]["config"] = {{"threads", 4}};
       },
       {"isolator plugin 'inprocess'", "threads"}},
      {"tunnel_unknown_key",
       [](json& c, const std::string&, const TestPki&) { c["tunnel"]["config"]["max_row"] = 10; },
       {"tunnel plugin 'https'", "max_row"}},
      {"tunnel_tls_certificate_missing",
       [](json& c, const std::string& dir, const TestPki&) {
         c["tunnel"]["config"]["tls"]["certificate_file"] = dir + "/gone.pem";
       },
       {"tls.certificate_file", "gone.pem"}},
      {"tunnel_tls_key_unreadable",
       [](json& c, const std::string& dir, const TestPki&) {
         // A directory where the key should be: unreadable as a key even for root.
         std::filesystem::create_directories(dir + "/key-dir.pem");
         c["tunnel"]["config"]["tls"]["private_key_file"] = dir + "/key-dir.pem";
       },
       {"tls.private_key_file", "key-dir.pem"}},
      {"tunnel_tls_key_does_not_match",
       [](json& c, const std::string&, const TestPki& pki) {
         c["tunnel"]["config"]["tls"]["private_key_file"] = pki.client.key_file;
       },
       {"tls.private_key_file", "match"}},  // "mismatch" or "does not match"
      {"server_tls_certificate_missing",
       [](json& c, const std::string& dir, const TestPki& pki) {
         c["server"]["tls"] = {{"certificate_file", dir + "/no-server.pem"},
                               {"private_key_file", pki.server.key_file}};
       },
       {"tls", "no-server.pem"}},
      {"server_tls_key_does_not_match",
       [](json& c, const std::string&, const TestPki& pki) {
         c["server"]["tls"] = {{"certificate_file", pki.server.cert_file},
                               {"private_key_file", pki.client.key_file}};
       },
       {"tls", "private key"}},
      // The PostgreSQL state store: what opening it refuses before connecting.
      {"state_dsn_secret_unset",
       [](json& c, const std::string&, const TestPki&) {
         c["state"] = {{"backend", "postgres"}, {"dsn_secret", "env:AIRLOCK_CHECK_NO_SUCH_DSN"}};
       },
       {"state.dsn_secret", "AIRLOCK_CHECK_NO_SUCH_DSN"}},
      {"state_dsn_malformed",
       [](json& c, const std::string& dir, const TestPki&) {
         std::ofstream(dir + "/state.dsn") << "host=127.0.0.1 password";
         c["state"] = {{"backend", "postgres"}, {"dsn_secret", "file:" + dir + "/state.dsn"}};
       },
       {"connection string is malformed"}},
      {"state_tls_ca_missing",
       [](json& c, const std::string& dir, const TestPki&) {
         std::ofstream(dir + "/state.dsn") << "host=127.0.0.1 port=1 dbname=airlock";
         c["state"] = {{"backend", "postgres"},
                       {"dsn_secret", "file:" + dir + "/state.dsn"},
                       {"tls", {{"mode", "verify-full"}, {"ca_file", dir + "/no-pg-ca.pem"}}}};
       },
       {"state.tls.ca_file", "no-pg-ca.pem"}},
      // Notifiers are kernel-side plugins: loaded as their kind, configuration checked.
      {"notifier_url_plaintext",
       [](json& c, const std::string&, const TestPki&) {
         c["notifications"] = {
             {"notifiers",
              {{"ops",
                {{"plugin", PluginPath("airlock_notifier_webhook")},
                 {"config", {{"url", "http://hooks.example.com/"}, {"secret", "env:X"}}}}}}}};
       },
       {"notifier plugin 'ops'", "http"}},
      {"policy_plugin_in_notifier_slot",
       [](json& c, const std::string&, const TestPki&) {
         c["notifications"] = {
             {"notifiers", {{"ops", {{"plugin", PluginPath("airlock_policy_rules")}}}}}};
       },
       {"notifier plugin 'ops'", "expected a notifier plugin"}},
      {"unknown_top_level_key",
       [](json& c, const std::string&, const TestPki&) { c["sever"] = json::object(); },
       {"sever"}},
  };
}

class CheckConfigBroken : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(CheckConfigBroken, RefusedByCheckConfigAndByServe) {
  const BrokenCase& c = GetParam();
  TempDir dir("airlock-checkcfg-");
  const TestPki pki = GenerateTestPki(dir.path());
  json config = GoodConfig(dir.path(), pki);
  c.breaks(config, dir.path(), pki);

  KernelProcess kernel(dir.path(), config);  // writes <dir>/airlock.json
  std::string checked;
  EXPECT_EQ(RunAirlockd({"check-config", "--config", kernel.config_path()}, &checked), 1)
      << checked;
  // No line says "ok:" (a plugin named "webhook:" does not count).
  EXPECT_NE(checked.rfind("ok:", 0), 0u) << checked;
  EXPECT_EQ(checked.find("\nok:"), std::string::npos) << checked;
  for (const auto& part : c.named) {
    EXPECT_NE(checked.find(part), std::string::npos) << "check-config: " << checked;
  }

  ASSERT_FALSE(kernel.Start()) << "serve accepted what check-config refused";
  const std::string served = kernel.log();
  for (const auto& part : c.named) {
    EXPECT_NE(served.find(part), std::string::npos) << "serve: " << served;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCategory, CheckConfigBroken, ::testing::ValuesIn(BrokenCases()),
                         [](const ::testing::TestParamInfo<BrokenCase>& info) {
                           return info.param.name;
                         });

// A TCP port on 127.0.0.1 held open (listening) for the test's lifetime.
class HeldPort {
 public:
  HeldPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(fd_, 1) == 0) {
      socklen_t length = sizeof addr;
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length);
      port_ = ntohs(addr.sin_port);
    }
  }
  ~HeldPort() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(CheckConfig, GoodConfigurationIsOkWithoutStartingAnything) {
  TempDir dir("airlock-checkcfg-");
  const TestPki pki = GenerateTestPki(dir.path());
  json config = GoodConfig(dir.path(), pki);
  // The ports the API and the tunnel would listen on are taken (as by a
  // kernel already serving this configuration): a check binds neither.
  HeldPort api;
  HeldPort tunnel;
  ASSERT_NE(api.port(), 0);
  ASSERT_NE(tunnel.port(), 0);
  config["server"]["port"] = api.port();
  config["tunnel"]["config"]["port"] = tunnel.port();
  KernelProcess kernel(dir.path(), config);
  std::string out;
  EXPECT_EQ(RunAirlockd({"check-config", "--config", kernel.config_path()}, &out), 0) << out;
  EXPECT_NE(out.find("ok:"), std::string::npos) << out;
  EXPECT_EQ(out.find("note:"), std::string::npos) << out;  // everything could be checked
  // Nothing was opened in the state directory either.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state/state.db")) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state/audit.log")) << out;
}

}  // namespace
}  // namespace airlock::test
