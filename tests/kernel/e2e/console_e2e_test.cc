// The web console (/console/) in a real headless Chromium against a real
// airlockd: alice signs in with her token and asks; bob, signed in in
// another tab, sees the ask arrive in his queue without reloading and
// approves; alice sees it become ready, collects and copies the credential,
// and runs a query in the tunnel's explorer with it; a denied ask shows why;
// an admin searches the audit across requests and reads the loaded
// plugins. With AIRLOCK_CONSOLE_SCREENSHOTS=<dir> each page is also saved as
// a PNG (the pictures in docs/console.md).
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/child_process.h"
#include "tests/support/headless_chromium.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using airlock::testing::HeadlessChromium;
using nlohmann::json;

constexpr const char* kAlice = "alk_console_alice_token_1";
constexpr const char* kBob = "alk_console_bob_token_2";
constexpr const char* kCarol = "alk_console_carol_token_3";
constexpr const char* kDave = "alk_console_dave_token_4";
constexpr auto kUiTimeout = std::chrono::seconds(20);

std::string Quoted(const std::string& text) {
  return json(text).dump();
}

class ConsoleE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string binary = HeadlessChromium::FindBinary();
    if (binary.empty()) {
      GTEST_SKIP() << "chromium is not installed (/usr/bin/chromium; set AIRLOCK_CHROMIUM to use "
                      "another build)";
    }
    pki_ = GenerateTestPki(dir_.path());
    const json identity = {
        {{"name", "tokens"},
         {"plugin", PluginPath("airlock_identity_static_tokens")},
         {"config",
          {{"tokens",
            {TokenEntry(kAlice, "alice", "analysts"), TokenEntry(kBob, "bob", "owners"),
             TokenEntry(kCarol, "carol", "admins"), TokenEntry(kDave, "dave", "contractors")}}}}}};
    json config = OrdersKernelConfig(dir_.path(), pki_, identity);
    config["datasets"][0]["description"] = "Every order, with its amount";
    config["datasets"][0]["tags"] = {"sales"};
    config["datasets"][0]["columns"] = {{{"name", "order_id"}, {"type", "int64"}},
                                        {{"name", "amount"}, {"type", "int64"}}};
    config["access"] = {{"admin_groups", {"admins"}}, {"reviewer_groups", {"owners"}}};
    Adjust(config);
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    origin_ = "http://127.0.0.1:" + std::to_string(kernel_->port());

    std::string error;
    browser_ = HeadlessChromium::Launch(binary, dir_.File("chromium-profile"), &error);
    ASSERT_NE(browser_, nullptr) << error;
    ASSERT_TRUE(browser_->GrantClipboard(origin_, &error)) << error;
    if (const char* dir = std::getenv("AIRLOCK_CONSOLE_SCREENSHOTS"); dir != nullptr && *dir) {
      screenshots_ = dir;
      std::filesystem::create_directories(screenshots_);
    }
  }

  // A variant's changes to the kernel's configuration.
  virtual void Adjust(json& /*config*/) {}

  // Opens the console in a new tab and signs in with `token`; returns the tab.
  size_t SignedInTab(const char* token, const std::string& subject) {
    size_t tab = 0;
    std::string error;
    EXPECT_TRUE(OpenConsole("/console/", &tab, &error)) << error;
    SignIn(token);
    EXPECT_TRUE(browser_->WaitFor(
        "document.getElementById('who-name').textContent === " + Quoted(subject), kUiTimeout))
        << Text("sign-in-error");
    // Live updates connected: what follows needs no reload.
    EXPECT_TRUE(
        browser_->WaitFor("document.getElementById('live').textContent === 'live'", kUiTimeout));
    return tab;
  }

  // Opens the console and waits until its script has wired the page: a
  // click that lands before then does nothing.
  bool OpenConsole(const std::string& path, size_t* tab, std::string* error) {
    if (!browser_->OpenPage(origin_ + path, error, tab)) return false;
    if (browser_->WaitFor("document.body && document.body.dataset.ready === 'true' && "
                          "!document.getElementById('sign-in-view').hidden",
                          kUiTimeout)) {
      return true;
    }
    *error = "the console never became ready: " + browser_->Log();
    return false;
  }

  void SignIn(const char* token) {
    TypeInto("token", token);
    Click("sign-in");
  }

  json Eval(const std::string& expression) {
    std::string error;
    json value = browser_->Evaluate(expression, &error);
    EXPECT_TRUE(error.empty()) << error;
    return value;
  }
  void TypeInto(const std::string& id, const std::string& text) {
    Eval("(() => { const e = document.getElementById(" + Quoted(id) +
         "); e.value = ''; e.focus(); return true; })()");
    std::string error;
    EXPECT_TRUE(browser_->Type(text, &error)) << error;
  }
  void Click(const std::string& id) {
    Eval("document.getElementById(" + Quoted(id) + ").click(), true");
  }
  // Types into the field `selector` finds inside the card of request `id`.
  void TypeIntoCard(const std::string& id, const std::string& selector, const std::string& text) {
    Eval("document.querySelector('.card[data-id=" + Quoted(id) + "] " + selector +
         "').focus(), true");
    std::string error;
    EXPECT_TRUE(browser_->Type(text, &error)) << error;
  }
  // Clicks the element `selector` finds inside the card of request `id`.
  void ClickInCard(const std::string& id, const std::string& selector) {
    Eval("document.querySelector('.card[data-id=" + Quoted(id) + "] " + selector +
         "').click(), true");
  }
  std::string Text(const std::string& id) {
    const json text = Eval("document.getElementById(" + Quoted(id) + ").textContent");
    return text.is_string() ? text.get<std::string>() : "";
  }
  std::string CardText(const std::string& id, const std::string& selector) {
    const json text =
        Eval("(e => e ? e.textContent : '')(document.querySelector('.card[data-id=" + Quoted(id) +
             "] " + selector + "'))");
    return text.is_string() ? text.get<std::string>() : "";
  }
  void Go(const std::string& hash) { Eval("location.hash = " + Quoted(hash) + ", true"); }
  void Shot(const std::string& name) {
    if (screenshots_.empty()) return;
    std::string error;
    EXPECT_TRUE(browser_->Screenshot(screenshots_ + "/" + name + ".png", 1280, 800, &error))
        << error;
  }

  TempDir dir_{"airlock-console-e2e-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HeadlessChromium> browser_;
  std::string origin_;
  std::string screenshots_;
};

TEST_F(ConsoleE2E, IsServedWithAStrictPolicyAndNoInlineCode) {
  HttpClient client("127.0.0.1", kernel_->port());
  for (const char* path : {"/console", "/console/"}) {
    auto page = client.Get(path);
    ASSERT_EQ(page.status, 200u) << path;
    EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_NE(page.header("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
    EXPECT_NE(page.header("Content-Security-Policy").find("require-trusted-types-for 'script'"),
              std::string::npos);
    EXPECT_EQ(page.header("X-Frame-Options"), "DENY");
    EXPECT_EQ(page.header("Cache-Control"), "no-store");
    EXPECT_FALSE(std::regex_search(page.body, std::regex(R"(\son[a-z]+\s*=)")));
    EXPECT_FALSE(std::regex_search(page.body, std::regex(R"(<script>|<script [^s]|style=)")));
  }
  auto script = client.Get("/console/app.js");
  ASSERT_EQ(script.status, 200u);
  EXPECT_EQ(script.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(client.Get("/console/nothing.js").status, 404u);
  // Only the console's own files: nothing is a path on disk.
  EXPECT_EQ(client.Get("/console/../v1/catalog").status, 404u);
  EXPECT_EQ(client.Get("/console/%2e%2e%2fstate").status, 404u);
  // Who am I needs a credential.
  EXPECT_EQ(client.Get("/v1/me").status, 401u);
  auto me = client.Get("/v1/me", {{"Authorization", std::string("Bearer ") + kCarol}});
  ASSERT_EQ(me.status, 200u) << me.body;
  EXPECT_EQ(me.json().value("subject", ""), "carol");
  EXPECT_TRUE(me.json().value("admin", false));
}

TEST_F(ConsoleE2E, AliceAsksBobApprovesLiveAliceQueriesThroughTheExplorer) {
  // A wrong token is refused on the page, in words.
  std::string error;
  size_t alice = 0;
  ASSERT_TRUE(OpenConsole("/console/", &alice, &error)) << error;
  Shot("sign-in");
  SignIn("alk_not_a_token");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('sign-in-error').textContent.includes('not accepted')", kUiTimeout));
  SignIn(kAlice);
  ASSERT_TRUE(
      browser_->WaitFor("document.getElementById('who-name').textContent === 'alice'", kUiTimeout));
  ASSERT_TRUE(
      browser_->WaitFor("document.getElementById('live').textContent === 'live'", kUiTimeout));
  // Without tenants nothing speaks of them.
  EXPECT_EQ(Eval("document.getElementById('who-tenant').hidden"), json(true));

  // Bob watches his queue in another tab; the marker tells a reload.
  const size_t bob = SignedInTab(kBob, "bob");
  Go("#/approvals");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('queue').textContent.includes('Nothing waits')", kUiTimeout));
  Eval("window.__stillTheSamePage = true");

  // Alice picks the dataset from the catalog and asks.
  browser_->UsePage(alice);
  ASSERT_TRUE(browser_->WaitFor("!!document.querySelector('#catalog .pick[value=\"orders\"]')",
                                kUiTimeout));
  EXPECT_NE(Eval("document.getElementById('catalog').textContent")
                .get<std::string>()
                .find("Every order, with its amount"),
            std::string::npos);
  // The policy's answer for her is shown before she asks.
  EXPECT_EQ(Eval("document.querySelector('#catalog tr[data-dataset=\"orders\"] td.for-me')"
                 ".textContent"),
            json("needs approval by owners; up to 1 h"));
  Eval("document.querySelector('#catalog .pick[value=\"orders\"]').click(), true");
  // She wants the amounts only.
  Eval(
      "document.querySelector('#catalog .col-pick[data-dataset=\"orders\"][value=\"amount\"]')"
      ".click(), true");
  TypeInto("purpose", "Quarterly revenue check");
  Shot("catalog");
  Click("ask");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('ask-result').textContent.includes('pending approval')", kUiTimeout))
      << Text("ask-result");
  const std::string result = Text("ask-result");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(result, m, std::regex("req_[0-9a-f]+"))) << result;
  const std::string id = m[0];
  HttpClient api("127.0.0.1", kernel_->port());
  const json asked =
      api.Get("/v1/requests/" + id, {{"Authorization", std::string("Bearer ") + kAlice}}).json();
  EXPECT_EQ(asked["request"]["columns"], json({{"orders", {"amount"}}})) << asked.dump();

  // Bob's queue gains it without a reload: who asks, what, why, the policy.
  browser_->UsePage(bob);
  ASSERT_TRUE(browser_->WaitFor(
      "!!document.querySelector('#queue .card[data-id=" + Quoted(id) + "]')", kUiTimeout))
      << Text("error");
  EXPECT_EQ(Eval("window.__stillTheSamePage === true"), json(true)) << "the page was reloaded";
  EXPECT_EQ(CardText(id, ".requester"), "alice");
  EXPECT_EQ(CardText(id, ".purpose"), "Quarterly revenue check");
  EXPECT_NE(CardText(id, ".policy-reason").find("approval by 1 of owners"), std::string::npos)
      << CardText(id, ".policy-reason");
  EXPECT_EQ(Text("queue-count"), "1");
  Shot("approvals");
  TypeIntoCard(id, ".comment", "fine");
  ClickInCard(id, ".approve");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('queue').textContent.includes('Nothing waits')", kUiTimeout));
  ASSERT_TRUE(browser_->WaitFor(
      "!!document.querySelector('#decided .card[data-id=" + Quoted(id) + "]')", kUiTimeout));

  // Alice sees it become ready, collects the credential once and copies it.
  browser_->UsePage(alice);
  Go("#/requests");
  ASSERT_TRUE(browser_->WaitFor(
      "!!document.querySelector('.card[data-id=" + Quoted(id) + "].state-ready .collect')",
      std::chrono::seconds(30)))
      << Text("requests");
  ClickInCard(id, ".collect");
  ASSERT_TRUE(browser_->WaitFor(
      "(e => !!e && e.value.length > 10)(document.querySelector('.card[data-id=" + Quoted(id) +
          "] .credential'))",
      kUiTimeout))
      << Text("error");
  const std::string credential =
      Eval("document.querySelector('.card[data-id=" + Quoted(id) + "] .credential').value");
  ClickInCard(id, ".copy");
  ASSERT_TRUE(browser_->WaitFor("document.querySelector('.card[data-id=" + Quoted(id) +
                                    "] .copied').textContent === 'copied'",
                                kUiTimeout));
  EXPECT_EQ(Eval("navigator.clipboard.readText()"), json(credential));
  Shot("requests");
  const std::string explorer =
      Eval("document.querySelector('.card[data-id=" + Quoted(id) + "] a.explorer').href");
  ASSERT_EQ(explorer.rfind("https://127.0.0.1:", 0), 0u) << explorer;
  // The token is in no storage and no URL the page could leak.
  EXPECT_EQ(Eval("localStorage.length + sessionStorage.length"), json(0));
  EXPECT_EQ(Eval("document.cookie"), json(""));
  EXPECT_EQ(Eval("location.href.includes('alk_')"), json(false));
  // The credential is collected once: the API says so to a second try.
  EXPECT_EQ(api.Post("/v1/requests/" + id + "/credentials", "",
                     {{"Authorization", std::string("Bearer ") + kAlice}})
                .status,
            410u);

  // In the explorer, with the credential from the clipboard, a query runs.
  ASSERT_TRUE(browser_->OpenPage(
      explorer + "#autorun=" + PercentEncode("SELECT COUNT(*) AS n FROM orders"), &error))
      << error;
  ASSERT_TRUE(
      browser_->WaitFor("document.body && document.body.dataset.ready === 'true'", kUiTimeout))
      << browser_->Log();
  TypeInto("credential", credential);
  Click("connect");
  ASSERT_TRUE(
      browser_->WaitFor("document.querySelectorAll('#result tbody tr').length === 1", kUiTimeout))
      << Text("status") << " " << Text("error");
  EXPECT_EQ(Eval("document.querySelector('#result tbody td').textContent"), json("2"));
  Shot("explorer");
}

TEST_F(ConsoleE2E, ADeniedAskShowsWhyAndAnAdminReadsTheTrail) {
  // The policy refuses dave at once: the page says why.
  SignedInTab(kDave, "dave");
  ASSERT_TRUE(browser_->WaitFor("!!document.querySelector('#catalog .pick[value=\"orders\"]')",
                                kUiTimeout));
  EXPECT_EQ(Eval("document.querySelector('#catalog tr[data-dataset=\"orders\"] td.for-me')"
                 ".textContent"),
            json("not for you"));
  Eval("document.querySelector('#catalog .pick[value=\"orders\"]').click(), true");
  TypeInto("purpose", "Curious");
  Click("ask");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('ask-result').textContent.startsWith('Denied:')", kUiTimeout));
  EXPECT_NE(Text("ask-result").find("no rule allows dave to read orders"), std::string::npos)
      << Text("ask-result");

  // Bob denies alice's ask with a comment; her page shows it, live.
  const size_t alice = SignedInTab(kAlice, "alice");
  HttpClient api("127.0.0.1", kernel_->port());
  auto created = api.Post(
      "/v1/requests", R"({"datasets":["orders"],"purpose":"Churn study"})",
      {{"Authorization", std::string("Bearer ") + kAlice}, {"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  Go("#/requests");
  ASSERT_TRUE(browser_->WaitFor(
      "!!document.querySelector('.card[data-id=" + Quoted(id) + "].state-pending_approval')",
      kUiTimeout));
  SignedInTab(kBob, "bob");
  Go("#/approvals");
  ASSERT_TRUE(browser_->WaitFor(
      "!!document.querySelector('#queue .card[data-id=" + Quoted(id) + "]')", kUiTimeout));
  TypeIntoCard(id, ".comment", "not this quarter");
  ClickInCard(id, ".deny");
  browser_->UsePage(alice);
  ASSERT_TRUE(browser_->WaitFor(
      "!!document.querySelector('.card[data-id=" + Quoted(id) + "].state-denied')", kUiTimeout))
      << Text("requests");
  EXPECT_EQ(CardText(id, ".reason"), "denied by bob: not this quarter");
  Shot("denied");

  // Carol, an admin, reads the request's trail and the loaded plugins.
  SignedInTab(kCarol, "carol");
  EXPECT_EQ(Eval("document.getElementById('nav-admin').hidden"), json(false));
  Go("#/admin");
  ASSERT_TRUE(
      browser_->WaitFor("document.querySelectorAll('#plugins tbody tr').length >= 5", kUiTimeout))
      << Text("error");
  EXPECT_NE(Eval("document.getElementById('plugins').textContent")
                .get<std::string>()
                .find("static-tokens"),
            std::string::npos);
  // Across requests: what bob did is one denial, of alice's request.
  TypeInto("audit-subject", "bob");
  Click("audit-search");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('audit-status').textContent === '1 record; that is all.'",
      kUiTimeout))
      << Text("error") << Text("audit-status");
  EXPECT_EQ(Eval("document.querySelector('#audit td.event').textContent"), json("request.denied"));
  EXPECT_EQ(Eval("document.querySelector('#audit code.request').textContent"), json(id));
  // Every request.* record, a page of 50 at a time: dave's and alice's asks.
  Eval("document.getElementById('audit-subject').value = '', true");
  TypeInto("audit-event", "request.submitted");
  Click("audit-search");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('audit-status').textContent === '2 records; that is all.'",
      kUiTimeout))
      << Text("error") << Text("audit-status");
  // One request's whole trail.
  Eval("document.getElementById('audit-event').value = '', true");
  TypeInto("audit-request", id);
  Click("audit-search");
  ASSERT_TRUE(browser_->WaitFor(
      "[...document.querySelectorAll('#audit td.event')].some(e => e.textContent === "
      "'request.denied')",
      kUiTimeout))
      << Text("error");
  EXPECT_EQ(Eval("document.querySelector('#audit td.event').textContent"),
            json("request.submitted"));
  EXPECT_NE(
      Eval("document.getElementById('agents').textContent").get<std::string>().find("No agents"),
      std::string::npos);
  Shot("admin");
  // Alice is no admin: no admin page for her.
  browser_->UsePage(alice);
  EXPECT_EQ(Eval("document.getElementById('nav-admin').hidden"), json(true));
}

// A port nobody listens on now (the kernel must be told its port before it
// starts: the provider knows the console's redirect URI by then).
uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// With tenants: each person sees their tenant beside their name, the catalog
// and a request card say whose a dataset or request is, and a platform admin
// (of no tenant) sees every tenant's datasets, each labelled.
class ConsoleTenantsE2E : public ConsoleE2E {
 protected:
  void Adjust(json& config) override {
    config["tenants"] = {{"acme", {{"subjects", {"alice", "bob"}}}},
                         {"globex", {{"subjects", {"dave"}}}}};
    config["datasets"][0]["tenant"] = "acme";
    config["datasets"].push_back({{"name", "invoices"},
                                  {"connector", "files"},
                                  {"object", "orders.csv"},
                                  {"tenant", "globex"}});
  }

  // The tenant cell of each catalog row, by dataset.
  std::map<std::string, std::string> CatalogTenants() {
    const json rows = Eval(
        "[...document.querySelectorAll('#catalog tbody tr')].map(r => [r.dataset.dataset, "
        "(r.querySelector('td.tenant') || {}).textContent])");
    std::map<std::string, std::string> out;
    for (const json& row : rows) {
      out[row[0].get<std::string>()] = row[1].is_string() ? row[1].get<std::string>() : "<none>";
    }
    return out;
  }
};

TEST_F(ConsoleTenantsE2E, EveryoneSeesWhoseDatasetsAndRequestsTheyAre) {
  SignedInTab(kCarol, "carol");
  EXPECT_EQ(Text("who-tenant"), "all tenants");
  EXPECT_EQ(Eval("document.getElementById('who-tenant').hidden"), json(false));
  ASSERT_TRUE(
      browser_->WaitFor("document.querySelectorAll('#catalog tbody tr').length === 2", kUiTimeout));
  EXPECT_EQ(Eval("document.querySelector('#catalog th.tenant-col').hidden"), json(false));
  EXPECT_EQ(CatalogTenants(),
            (std::map<std::string, std::string>{{"invoices", "globex"}, {"orders", "acme"}}));

  SignedInTab(kAlice, "alice");
  EXPECT_EQ(Text("who-tenant"), "acme");
  ASSERT_TRUE(browser_->WaitFor("!!document.querySelector('#catalog .pick[value=\"orders\"]')",
                                kUiTimeout));
  // Only her tenant's dataset, labelled.
  EXPECT_EQ(CatalogTenants(), (std::map<std::string, std::string>{{"orders", "acme"}}));

  HttpClient api("127.0.0.1", kernel_->port());
  const auto created =
      api.Post("/v1/requests", R"({"datasets": ["orders"], "purpose": "tenant check"})",
               {{"Authorization", std::string("Bearer ") + kAlice}});
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  Go("#/requests");
  ASSERT_TRUE(browser_->WaitFor("!!document.querySelector('.card[data-id=" + Quoted(id) + "]')",
                                kUiTimeout));
  EXPECT_EQ(CardText(id, "dd.tenant"), "acme");
  EXPECT_EQ(CardText(id, "dd.requester"), "alice");

  SignedInTab(kDave, "dave");
  EXPECT_EQ(Text("who-tenant"), "globex");
  ASSERT_TRUE(
      browser_->WaitFor("document.querySelectorAll('#catalog tbody tr').length === 1", kUiTimeout));
  EXPECT_EQ(CatalogTenants(), (std::map<std::string, std::string>{{"invoices", "globex"}}));
}

// Signing in through a real OpenID provider (npm's oidc-provider, run by the
// test with node): the console's authorization-code flow with PKCE, the
// provider's own login and consent pages, and the kernel accepting the ID
// token through the oidc-jwt identity plugin (JWKS fetched over TLS).
class ConsoleOidcE2E : public ConsoleE2E {
 protected:
  void SetUp() override {
    const std::string binary = HeadlessChromium::FindBinary();
    if (binary.empty()) GTEST_SKIP() << "chromium is not installed";
    const std::string modules =
        std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/oidc/node_modules/oidc-provider";
    ASSERT_TRUE(std::filesystem::exists(modules))
        << "the test OpenID provider is not installed: scripts/test.sh installs it (npm ci in "
           "tests/support/oidc)";
    pki_ = GenerateTestPki(dir_.path());
    const uint16_t port = FreePort();
    ASSERT_NE(port, 0);
    origin_ = "http://127.0.0.1:" + std::to_string(port);
    const std::string settings = dir_.File("provider.json");
    std::ofstream(settings) << json{
        {"cert", pki_.server.cert_file},
        {"key", pki_.server.key_file},
        {"client_id", "airlock-console"},
        {"redirect_uri", origin_ + "/console/"},
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
                              {"audience", "airlock-console"},
                              {"jwks_url", issuer_ + "/jwks"},
                              {"jwks_ca_file", pki_.ca.cert_file},
                              {"groups_claim", "groups"}}}},
                           {{"name", "tokens"},
                            {"plugin", PluginPath("airlock_identity_static_tokens")},
                            {"config", {{"tokens", {TokenEntry(kBob, "bob", "owners")}}}}}};
    json config = OrdersKernelConfig(dir_.path(), pki_, identity);
    config["console"] = {{"oidc",
                          {{"issuer", issuer_},
                           {"client_id", "airlock-console"},
                           {"scopes", "openid email groups"}}}};
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    kernel_->set_port(port);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    ASSERT_EQ(kernel_->port(), port);

    std::string error;
    browser_ = HeadlessChromium::Launch(binary, dir_.File("chromium-profile"), &error);
    ASSERT_NE(browser_, nullptr) << error;
    if (const char* dir = std::getenv("AIRLOCK_CONSOLE_SCREENSHOTS"); dir != nullptr && *dir) {
      screenshots_ = dir;
      std::filesystem::create_directories(screenshots_);
    }
  }

  // The page's value of `expression`, or null while it navigates.
  json Peek(const std::string& expression) {
    std::string error;
    json value = browser_->Evaluate(expression, &error);
    return value.is_discarded() ? json() : value;
  }

  std::unique_ptr<ChildProcess> provider_;
  std::string issuer_;
};

TEST_F(ConsoleOidcE2E, AliceSignsInThroughTheProvidersPagesWithPkce) {
  HttpClient client("127.0.0.1", kernel_->port());
  auto config = client.Get("/console/config.json");
  ASSERT_EQ(config.status, 200u);
  EXPECT_EQ(config.json()["oidc"].value("issuer", ""), issuer_);
  EXPECT_EQ(config.json()["oidc"].value("client_id", ""), "airlock-console");
  // The page may fetch from the provider, and from nowhere else.
  EXPECT_NE(client.Get("/console/")
                .header("Content-Security-Policy")
                .find("connect-src 'self' " + issuer_ + ";"),
            std::string::npos)
      << client.Get("/console/").header("Content-Security-Policy");

  std::string error;
  ASSERT_TRUE(browser_->OpenPage(origin_ + "/console/", &error)) << error;
  ASSERT_TRUE(browser_->WaitFor("!document.getElementById('sso').hidden", kUiTimeout))
      << Peek("location.href").dump() << Peek("document.body ? document.body.innerText : 0").dump()
      << "oidc.js: " << Peek("typeof window.AirlockOidc").dump()
      << ", sign-in error: " << Peek("document.getElementById('sign-in-error').textContent").dump();
  Click("sso-sign-in");

  // The provider's own pages: a login form, then consent; then back.
  bool logged_in = false;
  bool shot = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (std::chrono::steady_clock::now() < give_up) {
    const json where = Peek("location.origin");
    if (where == json(issuer_)) {
      if (Peek("!!document.querySelector('input[name=login]')") == json(true) && !logged_in) {
        if (!shot) {
          Shot("sign-in-sso");
          shot = true;
        }
        Peek(
            "(() => { const f = document.querySelector('input[name=login]').form;"
            " f.login.value = 'alice'; f.password.value = 'any'; f.submit(); return true; })()");
        logged_in = true;
      } else if (Peek("!!document.querySelector('input[name=prompt][value=consent]')") ==
                 json(true)) {
        Peek("document.querySelector('input[name=prompt][value=consent]').form.submit(), true");
      }
    } else if (where == json(origin_) && logged_in &&
               Peek("document.getElementById('who-name').textContent") == json("alice")) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(Peek("document.getElementById('who-name').textContent"), json("alice"))
      << "at " << Peek("location.href").dump() << ": " << Peek("document.body.innerText").dump();
  // The kernel took the ID token: alice, an analyst, asks from the page.
  ASSERT_TRUE(browser_->WaitFor("!!document.querySelector('#catalog .pick[value=\"orders\"]')",
                                kUiTimeout));
  Eval("document.querySelector('#catalog .pick[value=\"orders\"]').click(), true");
  TypeInto("purpose", "Signed in with single sign-on");
  Click("ask");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('ask-result').textContent.includes('pending approval')", kUiTimeout))
      << Text("ask-result");
  // Nothing of the flow is left behind: no code in the address, no verifier.
  EXPECT_EQ(Eval("location.search"), json(""));
  EXPECT_EQ(Eval("sessionStorage.length + localStorage.length"), json(0));
  // In the approver's queue, as alice's.
  auto listed =
      client.Get("/v1/requests?awaiting=me", {{"Authorization", std::string("Bearer ") + kBob}});
  ASSERT_EQ(listed.status, 200u);
  ASSERT_EQ(listed.json()["requests"].size(), 1u);
  EXPECT_EQ(listed.json()["requests"][0]["requester"].value("subject", ""), "alice");

  // An answer that does not belong to a sign-in started here is refused.
  ASSERT_TRUE(browser_->OpenPage(origin_ + "/console/?code=stolen-code&state=not-ours", &error))
      << error;
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('sign-in-error').textContent.includes('does not belong')",
      kUiTimeout))
      << Text("sign-in-error");
  EXPECT_EQ(Eval("location.search"), json(""));
  EXPECT_TRUE(Eval("document.getElementById('nav').hidden").get<bool>());
}

}  // namespace
}  // namespace airlock::test
