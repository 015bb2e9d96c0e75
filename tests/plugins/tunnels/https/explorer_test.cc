// The web explorer at /t/<id>/: its assets and headers, and the page itself
// running in a real headless Chromium driven through the DevTools protocol
// (the credential is typed, never put in a URL).
#include <regex>

#include "tests/support/headless_chromium.h"
#include "tunnel_fixture.h"

namespace airlock::testing::https_tunnel {
namespace {

using airlock::test::PercentEncode;
using airlock::testing::HeadlessChromium;

constexpr char kExpectedPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'";

TEST_F(HttpsTunnelTest, ExplorerIsServedWithAStrictPolicy) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "assets");
  auto client = Client(opened.port);

  auto page = client->Get(opened.base_path + "/");  // no credential needed: no data in it
  ASSERT_EQ(page.status, 200u) << page.body;
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.header("Content-Security-Policy"), kExpectedPolicy);
  EXPECT_EQ(page.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(page.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(page.header("Referrer-Policy"), "no-referrer");
  EXPECT_EQ(page.header("Cache-Control"), "no-store");
  // One external script of its own; no inline script, style or handler; no
  // resource from anywhere else.
  EXPECT_NE(page.body.find("<script src=\"explorer.js\" defer></script>"), std::string::npos);
  const std::regex script_tag("<script");
  EXPECT_EQ(std::distance(std::sregex_iterator(page.body.begin(), page.body.end(), script_tag),
                          std::sregex_iterator()),
            1);
  EXPECT_FALSE(std::regex_search(page.body, std::regex(R"(\son[a-z]+\s*=)"))) << page.body;
  EXPECT_EQ(page.body.find("style="), std::string::npos);
  EXPECT_EQ(page.body.find("<style"), std::string::npos);
  EXPECT_EQ(page.body.find("//"), std::string::npos) << "no absolute or protocol-relative URL";
  // The credential field cannot be submitted by the browser itself.
  EXPECT_TRUE(
      std::regex_search(page.body, std::regex(R"(<input id="credential" type="password")")));
  EXPECT_FALSE(std::regex_search(page.body, std::regex(R"(<input[^>]*\sname=)")));

  const auto script = client->Get(opened.base_path + "/explorer.js");
  ASSERT_EQ(script.status, 200u);
  EXPECT_EQ(script.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(script.header("Content-Security-Policy"), kExpectedPolicy);
  for (const char* sink :
       {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("}) {
    EXPECT_EQ(script.body.find(sink), std::string::npos) << sink;
  }
  const auto style = client->Get(opened.base_path + "/explorer.css");
  ASSERT_EQ(style.status, 200u);
  EXPECT_EQ(style.header("Content-Type"), "text/css; charset=utf-8");

  const auto redirect = client->Get(opened.base_path);
  EXPECT_EQ(redirect.status, 308u);
  EXPECT_EQ(redirect.header("Location"), opened.base_path + "/");
  EXPECT_EQ(client->Post(opened.base_path + "/", "{}").status, 405u);
  EXPECT_EQ(client->Get("/t/nobody/").status, 404u);
  Close(instance, opened);
  EXPECT_EQ(client->Get(opened.base_path + "/").status, 410u);
}

class ExplorerBrowserTest : public HttpsTunnelTest {
 protected:
  // Evaluates or fails the test with the browser's own words.
  json Eval(const std::string& expression) {
    std::string error;
    json value = browser_->Evaluate(expression, &error);
    EXPECT_TRUE(error.empty()) << error;
    return value;
  }
  void TypeInto(const std::string& id, const std::string& text) {
    Eval("(() => { const e = document.getElementById('" + id +
         "'); e.value = ''; e.focus(); return true; })()");
    std::string error;
    EXPECT_TRUE(browser_->Type(text, &error)) << error;
  }
  void Click(const std::string& id) { Eval("document.getElementById('" + id + "').click(), true"); }
  std::string Text(const std::string& id) {
    const json text = Eval("document.getElementById('" + id + "').textContent");
    return text.is_string() ? text.get<std::string>() : "";
  }

  std::unique_ptr<HeadlessChromium> browser_;
};

TEST_F(ExplorerBrowserTest, RunsQueriesInHeadlessChromium) {
  const std::string binary = HeadlessChromium::FindBinary();
  if (binary.empty()) {
    GTEST_SKIP() << "chromium is not installed (/usr/bin/chromium; set AIRLOCK_CHROMIUM to use "
                    "another build)";
  }
  ASSERT_EQ("", db_.Exec("CREATE TABLE notes (id INTEGER, body TEXT);"
                         "INSERT INTO notes VALUES (1, '<script>window.__xss = 1</script>'),"
                         "(2, '<img src=x onerror=\"window.__xss = 2\">'), (3, 'Ada & Grace');"));
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "explore");

  std::string error;
  browser_ = HeadlessChromium::Launch(binary, dir_->File("chromium-profile"), &error);
  ASSERT_NE(browser_, nullptr) << error;

  // The SQL travels in the fragment (never sent to the server); the
  // credential does not travel in the URL at all.
  const std::string sql =
      "SELECT id, body AS \"<img src=y onerror=window.__xss=3>\" FROM notes ORDER BY id";
  const std::string url = "https://127.0.0.1:" + std::to_string(opened.port) + opened.base_path +
                          "/#autorun=" + PercentEncode(sql);
  ASSERT_TRUE(browser_->OpenPage(url, &error)) << error;
  ASSERT_TRUE(browser_->WaitFor("document.body && document.body.dataset.ready === 'true'",
                                std::chrono::seconds(20)))
      << browser_->Log();
  EXPECT_EQ(Eval("document.getElementById('sql').value"), sql);
  EXPECT_EQ(db_.queries_started(), 0) << "nothing runs before a credential is entered";

  // A user pastes the credential and connects; the autorun query then runs.
  TypeInto("credential", opened.credential);
  Click("connect");
  ASSERT_TRUE(browser_->WaitFor("document.querySelectorAll('#result tbody tr').length === 3",
                                std::chrono::seconds(20)))
      << "status: " << Text("status") << " error: " << Text("error")
      << " message: " << Text("message") << "\n"
      << browser_->Log();
  const json cells =
      json::parse(Eval("JSON.stringify(Array.from(document.querySelectorAll('#result tr'))"
                       ".map(r => Array.from(r.cells).map(c => c.textContent)))")
                      .get<std::string>());
  EXPECT_EQ(cells, json::parse(R"([
    ["id", "<img src=y onerror=window.__xss=3>"],
    ["1", "<script>window.__xss = 1</script>"],
    ["2", "<img src=x onerror=\"window.__xss = 2\">"],
    ["3", "Ada & Grace"]])"));
  EXPECT_NE(Text("status").find("3 rows"), std::string::npos) << Text("status");
  // Shown as text, never parsed as HTML or run.
  EXPECT_EQ(Eval("typeof window.__xss"), "undefined");
  EXPECT_EQ(Eval("document.querySelectorAll('#result script, #result img').length"), 0);

  // The schema is listed, with row counts.
  ASSERT_TRUE(browser_->WaitFor("!!document.querySelector('#tables li[data-table=\"people\"]')",
                                std::chrono::seconds(10)));
  EXPECT_NE(Eval("document.querySelector('#tables li[data-table=\"big\"]').textContent")
                .get<std::string>()
                .find("20,000 rows"),
            std::string::npos);
  EXPECT_NE(Text("session-info").find("alice@example.com"), std::string::npos);

  // The credential is in memory only: not in the URL, storage, cookies or DOM.
  EXPECT_EQ(Eval("location.href"), url);
  EXPECT_EQ(Eval("localStorage.length + sessionStorage.length"), 0);
  EXPECT_EQ(Eval("document.cookie"), "");
  EXPECT_EQ(Eval("document.getElementById('credential').value"), "");
  EXPECT_EQ(
      Eval("document.documentElement.outerHTML.includes(" + json(opened.credential).dump() + ")"),
      false);

  // A query typed by hand; a refused write shows the channel's error.
  TypeInto("sql", "DELETE FROM people");
  Click("run");
  ASSERT_TRUE(browser_->WaitFor(
      "document.getElementById('error').textContent.includes('permission_denied')",
      std::chrono::seconds(10)))
      << Text("error");
  EXPECT_EQ(Eval("document.querySelectorAll('#result tbody tr').length"), 0);

  // Revoked: the page says so.
  Close(instance, opened);
  TypeInto("sql", "SELECT 1");
  Click("run");
  ASSERT_TRUE(
      browser_->WaitFor("(t => t.includes('revoked') || t.includes('Request failed'))("
                        "document.getElementById('error').textContent)",
                        std::chrono::seconds(10)))
      << Text("error");
  browser_.reset();
}

}  // namespace
}  // namespace airlock::testing::https_tunnel
