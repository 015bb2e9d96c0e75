// `airlock login --sso` as its users run it: the real CLI against a real
// airlockd over TLS whose console.oidc names a real OpenID provider (npm's
// oidc-provider, run with node) and the CLI's native client there. The CLI
// listens on a loopback port, prints the provider's address, and a real
// browser (headless chromium) goes through the provider's login and
// consent pages and back to that port; the CLI redeems the code with its
// PKCE verifier, and the kernel takes the ID token (oidc-jwt identity).
// A forged answer to the loopback port is turned away, and a sign-in the
// user cancels ends the CLI with the provider's reason.
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/spawned.h"
#include "tests/support/child_process.h"
#include "tests/support/headless_chromium.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kBob = "alk_sso_bob_token_2";

std::string PercentDecoded(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out.push_back(static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(text[i] == '+' ? ' ' : text[i]);
    }
  }
  return out;
}

// The value of query parameter `name` in `url`, decoded.
std::string QueryParam(const std::string& url, const std::string& name) {
  size_t at = url.find("?" + name + "=");
  if (at == std::string::npos) at = url.find("&" + name + "=");
  if (at == std::string::npos) return {};
  const size_t start = at + name.size() + 2;
  return PercentDecoded(url.substr(start, url.find('&', start) - start));
}

class CliSsoE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string binary = testing::HeadlessChromium::FindBinary();
    if (binary.empty()) GTEST_SKIP() << "chromium is not installed";
    ASSERT_TRUE(std::filesystem::exists(std::string(AIRLOCK_SOURCE_DIR) +
                                        "/tests/support/oidc/node_modules/oidc-provider"))
        << "the test OpenID provider is not installed: scripts/test.sh installs it (npm ci in "
           "tests/support/oidc)";
    pki_ = GenerateTestPki(dir_.path());
    const std::string settings = dir_.File("provider.json");
    std::ofstream(settings) << json{
        {"cert", pki_.server.cert_file},
        {"key", pki_.server.key_file},
        {"client_id", "airlock-console"},
        {"redirect_uri", "https://127.0.0.1:1/console/"},
        {"cli_client_id", "airlock-cli"},
        {"accounts", {{"alice", {{"groups", {"analysts"}}, {"email", "alice@example.com"}}}}}};
    provider_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            "node", std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/oidc/provider.mjs", settings},
        std::chrono::seconds(30));
    issuer_ = json::parse(provider_->ready_line()).value("issuer", "");
    ASSERT_EQ(issuer_.rfind("https://127.0.0.1:", 0), 0u) << provider_->ready_line();

    const json identity = {{{"name", "sso"},
                            {"plugin", PluginPath("airlock_identity_oidc_jwt")},
                            {"config",
                             {{"issuer", issuer_},
                              {"audience", {"airlock-console", "airlock-cli"}},
                              {"jwks_url", issuer_ + "/jwks"},
                              {"jwks_ca_file", pki_.ca.cert_file},
                              {"groups_claim", "groups"}}}},
                           {{"name", "tokens"},
                            {"plugin", PluginPath("airlock_identity_static_tokens")},
                            {"config", {{"tokens", {TokenEntry(kBob, "bob", "owners")}}}}}};
    json config = OrdersKernelConfig(dir_.path(), pki_, identity);
    config["server"]["tls"] = {{"certificate_file", pki_.server.cert_file},
                               {"private_key_file", pki_.server.key_file}};
    config["console"] = {{"oidc",
                          {{"issuer", issuer_},
                           {"client_id", "airlock-console"},
                           {"cli_client_id", "airlock-cli"},
                           {"scopes", "openid email groups"}}}};
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    server_ = "https://127.0.0.1:" + std::to_string(kernel_->port());

    std::string error;
    browser_ = testing::HeadlessChromium::Launch(binary, dir_.File("chromium-profile"), &error);
    ASSERT_NE(browser_, nullptr) << error;
  }

  std::string Home() { return dir_.path() + "/home-alice"; }

  std::unique_ptr<Spawned> Cli(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock");
    return std::make_unique<Spawned>(
        args, std::map<std::string, std::string>{{"AIRLOCK_CONFIG_DIR", Home()}, {"HOME", Home()}},
        "");
  }

  // Starts `airlock login --sso`; the address it asks the user to open.
  std::string StartLogin(std::unique_ptr<Spawned>* login) {
    *login = Cli({"login", "--server", server_, "--ca-file", pki_.ca.cert_file, "--sso",
                  "--no-browser", "--issuer-ca-file", pki_.ca.cert_file, "--timeout", "90s"});
    EXPECT_TRUE((*login)->WaitForErr("Waiting for the sign-in", std::chrono::seconds(30)))
        << (*login)->err();
    const std::string& said = (*login)->err();
    const size_t at = said.find("\n  https://");
    if (at == std::string::npos) return {};
    return said.substr(at + 3, said.find('\n', at + 3) - at - 3);
  }

  json Peek(const std::string& expression) {
    std::string error;
    json value = browser_->Evaluate(expression, &error);
    return value.is_discarded() ? json() : value;
  }

  // Goes through the provider's pages as alice until the browser is back on
  // `origin` (the CLI's loopback port); `cancel` cancels at the login form.
  void ThroughTheProvider(const std::string& origin, bool cancel) {
    bool logged_in = false;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    while (std::chrono::steady_clock::now() < give_up) {
      const json where = Peek("location.origin");
      const json text = Peek("document.body ? document.body.innerText : ''");
      if (where == json(origin) && text.is_string() && !text.get<std::string>().empty()) return;
      if (where == json(issuer_)) {
        if (Peek("!!document.querySelector('input[name=login]')") == json(true) && !logged_in) {
          if (cancel) {
            Peek("document.querySelector('a[href$=\"/abort\"]').click(), true");
          } else {
            Peek(
                "(() => { const f = document.querySelector('input[name=login]').form;"
                " f.login.value = 'alice'; f.password.value = 'any'; f.submit(); return true; "
                "})()");
          }
          logged_in = true;
        } else if (Peek("!!document.querySelector('input[name=prompt][value=consent]')") ==
                   json(true)) {
          Peek("document.querySelector('input[name=prompt][value=consent]').form.submit(), true");
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "never back at " << origin << "; at " << Peek("location.href").dump();
  }

  TempDir dir_{"airlock-cli-sso-"};
  TestPki pki_;
  std::unique_ptr<ChildProcess> provider_;
  std::string issuer_;
  std::unique_ptr<KernelProcess> kernel_;
  std::string server_;
  std::unique_ptr<testing::HeadlessChromium> browser_;
};

TEST_F(CliSsoE2E, AliceSignsInThroughTheProviderInABrowserAndAsks) {
  std::unique_ptr<Spawned> login;
  const std::string url = StartLogin(&login);
  ASSERT_EQ(url.rfind(issuer_ + "/", 0), 0u) << login->err();
  EXPECT_EQ(QueryParam(url, "client_id"), "airlock-cli");
  EXPECT_EQ(QueryParam(url, "code_challenge_method"), "S256");
  EXPECT_EQ(QueryParam(url, "code_challenge").size(), 43u);
  const std::string redirect = QueryParam(url, "redirect_uri");
  ASSERT_EQ(redirect.rfind("http://127.0.0.1:", 0), 0u) << url;
  const std::string origin = redirect.substr(0, redirect.find('/', 7));

  // An answer that is not this sign-in's (another state) is turned away,
  // and the CLI goes on waiting.
  const uint16_t port = static_cast<uint16_t>(std::stoi(origin.substr(origin.rfind(':') + 1)));
  HttpClient forger("127.0.0.1", port);
  EXPECT_EQ(forger.Get("/callback?code=stolen&state=not-ours").status, 400u);
  EXPECT_EQ(forger.Get("/callback?error=access_denied").status, 400u);

  std::string error;
  ASSERT_TRUE(browser_->OpenPage(url, &error)) << error;
  ThroughTheProvider(origin, /*cancel=*/false);
  EXPECT_NE(Peek("document.body.innerText").dump().find("Signed in"), std::string::npos);
  ASSERT_EQ(login->Finish(), 0) << login->err();
  EXPECT_NE(login->out().find("Signed in to " + server_ + " as alice (analysts)"),
            std::string::npos)
      << login->out();

  // What it kept is the ID token (a JWT), readable by alice only.
  struct stat info {};
  ASSERT_EQ(::stat((Home() + "/config.json").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  std::ifstream kept_file(Home() + "/config.json");
  const json kept = json::parse(kept_file, nullptr, false);
  const std::string token = kept.value("token", "");
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2) << "not a JWT";

  // The kernel takes it: alice, an analyst, asks.
  auto me = Cli({"whoami"});
  ASSERT_EQ(me->Finish(), 0) << me->err();
  EXPECT_NE(me->out().find("alice"), std::string::npos) << me->out();
  auto asked = Cli({"request", "orders", "--for", "10m", "--reason", "signed in with sso"});
  ASSERT_EQ(asked->Finish(), 0) << asked->err();
  HttpClient api("127.0.0.1", kernel_->port(), ClientTls{pki_.ca.cert_file, "", ""});
  auto pending = api.Get("/v1/requests?awaiting=me", Auth(kBob));
  ASSERT_EQ(pending.status, 200u) << pending.body;
  ASSERT_EQ(pending.json()["requests"].size(), 1u);
  EXPECT_EQ(pending.json()["requests"][0]["requester"].value("subject", ""), "alice");
}

TEST_F(CliSsoE2E, ASignInCancelledAtTheProviderEndsWithItsReasonAndKeepsNothing) {
  std::unique_ptr<Spawned> login;
  const std::string url = StartLogin(&login);
  ASSERT_FALSE(url.empty()) << login->err();
  const std::string redirect = QueryParam(url, "redirect_uri");
  std::string error;
  ASSERT_TRUE(browser_->OpenPage(url, &error)) << error;
  ThroughTheProvider(redirect.substr(0, redirect.find('/', 7)), /*cancel=*/true);
  EXPECT_EQ(login->Finish(), 3) << login->err();
  EXPECT_NE(login->err().find("airlock: the provider refused the sign-in (access_denied"),
            std::string::npos)
      << login->err();
  EXPECT_FALSE(std::filesystem::exists(Home() + "/config.json"));
}

}  // namespace
}  // namespace airlock::test
