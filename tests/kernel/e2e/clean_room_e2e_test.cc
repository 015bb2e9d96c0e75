// The clean-room obligation (aggregate_only) against a real airlockd: an
// agent's grant answers only aggregates the enclave builds, never a group
// of fewer rows than the policy's minimum, on MCP, the HTTPS tunnel and the
// pgwire tunnel (psql) alike; free SQL and every way around the rules are
// refused with the reason, while a human analyst without the obligation
// gets full SQL over the same dataset.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/support/headless_chromium.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using testing::HeadlessChromium;

constexpr const char* kBot = "alk_clean_room_bot_1";
constexpr const char* kAlice = "alk_clean_room_alice_2";
// An agent whose token says so: an agent on the REST API too.
constexpr const char* kJobBot = "alk_clean_room_job_bot_3";
constexpr int kMinGroup = 3;

class CleanRoomE2E : public ::testing::Test {
 protected:
  void SetUp() override { StartKernel(HttpsTunnelRef(TestPkiFor())); }

  const TestPki& TestPkiFor() {
    pki_ = GenerateTestPki(dir_.path());
    return pki_;
  }

  void StartKernel(const json& tunnel) {
    std::filesystem::create_directories(dir_.File("data"));
    // EU and US: five sales each; APAC: two, fewer than the clean room's
    // minimum group of three.
    std::ofstream csv(dir_.File("data/sales.csv"));
    csv << "id,region,amount\n";
    int id = 1;
    for (const auto& [region, count] :
         std::vector<std::pair<std::string, int>>{{"EU", 5}, {"US", 5}, {"APAC", 2}}) {
      for (int i = 0; i < count; ++i, ++id) csv << id << "," << region << "," << id * 10 << "\n";
    }
    csv.close();
    const json clean_room = {{"min_group_size", kMinGroup},
                             {"allowed_functions", {"count", "sum", "avg"}},
                             {"dimensions", {"region"}},
                             {"metrics", {"amount"}}};
    const json policy = {{"version", 1},
                         {"rules",
                          {{{"name", "agents-aggregate-only"},
                            {"effect", "allow"},
                            {"subjects", {{"kinds", {"agent"}}}},
                            {"datasets", {"sales"}},
                            {"obligations", {{"sales", {{"aggregate_only", clean_room}}}}}},
                           {{"name", "analysts"},
                            {"effect", "allow"},
                            {"subjects", {{"groups", {"analysts"}}, {"kinds", {"human"}}}},
                            {"datasets", {"sales"}}}}}};
    const json bot = {{"sha256", Sha256HexOf(kBot)}, {"subject", "bot"}, {"groups", {"bots"}}};
    const json job_bot = {{"sha256", Sha256HexOf(kJobBot)},
                          {"subject", "job-bot"},
                          {"kind", "agent"},
                          {"groups", {"bots"}}};
    const json identity = {
        {{"name", "tokens"},
         {"plugin", PluginPath("airlock_identity_static_tokens")},
         {"config", {{"tokens", {bot, job_bot, TokenEntry(kAlice, "alice", "analysts")}}}}}};
    json config = OrdersKernelConfig(dir_.path(), pki_, identity);
    config["policy"] = RulesPolicyRef(policy);
    config["tunnel"] = tunnel;
    config["datasets"] = {{{"name", "sales"}, {"connector", "files"}}};
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    api_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port());
  }

  // One MCP tools/call as the bot: the CallToolResult.
  json Tool(const std::string& name, const json& arguments) {
    const json message = {{"jsonrpc", "2.0"},
                          {"id", ++rpc_id_},
                          {"method", "tools/call"},
                          {"params", {{"name", name}, {"arguments", arguments}}}};
    const auto r = api_->Post("/mcp", message.dump(), Auth(kBot));
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.json().value("result", json::object());
  }

  std::string WaitReady(const std::string& id, const char* token) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string state;
    while (std::chrono::steady_clock::now() < give_up) {
      state = api_->Get("/v1/requests/" + id, Auth(token)).json().value("state", "");
      if (state == "ready" || state == "failed" || state == "denied") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return state;
  }

  // The bot's ready request for sales, asked through MCP.
  std::string BotRequest() {
    const json asked = Tool("request_access", {{"datasets", {"sales"}}, {"purpose", "Sales mix"}});
    EXPECT_FALSE(asked.value("isError", true)) << asked.dump();
    const std::string id = asked["structuredContent"].value("id", "");
    EXPECT_EQ(WaitReady(id, kBot), "ready");
    return id;
  }

  json Aggregate(const std::string& id, json call) {
    call["request_id"] = id;
    return Tool("aggregate", call);
  }

  static std::string Text(const json& result) {
    return result.contains("content") ? result["content"][0].value("text", "") : "";
  }

  TempDir dir_;
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> api_;
  int rpc_id_ = 0;
};

TEST_F(CleanRoomE2E, AnAgentGetsOnlyAggregatesOfLargeEnoughGroupsOnEveryTransport) {
  const std::string id = BotRequest();
  const json by_region = {
      {"dataset", "sales"},
      {"dimensions", {"region"}},
      {"metrics", {{{"function", "count"}}, {{"function", "sum"}, {"column", "amount"}}}}};

  // The groups of at least three rows; APAC's two never appear.
  json result = Aggregate(id, by_region);
  ASSERT_FALSE(result.value("isError", true)) << result.dump();
  EXPECT_EQ(result["structuredContent"]["rows"], json::parse(R"([["EU", 5, 150], ["US", 5, 400]])"))
      << result.dump();
  EXPECT_EQ(result["structuredContent"]["columns"][2].value("name", ""), "sum_amount");
  // Narrowing to the small group yields nothing, not its two rows.
  json narrowed = by_region;
  narrowed["filters"] = {{{"column", "region"}, {"op", "eq"}, {"value", "APAC"}}};
  result = Aggregate(id, narrowed);
  ASSERT_FALSE(result.value("isError", true)) << result.dump();
  EXPECT_EQ(result["structuredContent"]["rows"], json::array());
  narrowed["filters"] = {{{"column", "region"}, {"op", "in"}, {"value", {"APAC", "EU"}}}};
  result = Aggregate(id, narrowed);
  EXPECT_EQ(result["structuredContent"]["rows"], json::parse(R"([["EU", 5, 150]])"));
  // A total over everything is one large group.
  result = Aggregate(id, {{"dataset", "sales"}, {"metrics", {{{"function", "count"}}}}});
  EXPECT_EQ(result["structuredContent"]["rows"], json::parse("[[12]]")) << result.dump();

  // Free SQL, SELECT *, a filter that isolates one row, a function or a
  // column the clean room does not allow: each refused with the reason.
  for (const char* sql : {"SELECT * FROM sales", "SELECT region, COUNT(*) FROM sales GROUP BY 1",
                          "SELECT amount FROM sales WHERE id = 7"}) {
    result = Tool("query", {{"request_id", id}, {"sql", sql}});
    EXPECT_TRUE(result.value("isError", false)) << sql << ": " << result.dump();
    EXPECT_NE(Text(result).find("aggregate_only obligation on sales"), std::string::npos)
        << Text(result);
  }
  json isolating = by_region;
  isolating["filters"] = {{{"column", "id"}, {"op", "eq"}, {"value", 7}}};
  result = Aggregate(id, isolating);
  EXPECT_TRUE(result.value("isError", false));
  EXPECT_NE(Text(result).find("filters may name dimensions only, not 'id'"), std::string::npos)
      << Text(result);
  result = Aggregate(
      id, {{"dataset", "sales"}, {"metrics", {{{"function", "max"}, {"column", "amount"}}}}});
  EXPECT_NE(Text(result).find("function max is not allowed"), std::string::npos) << Text(result);
  result =
      Aggregate(id, {{"dataset", "sales"}, {"metrics", {{{"function", "sum"}, {"column", "id"}}}}});
  EXPECT_NE(Text(result).find("'id' is not a metric"), std::string::npos) << Text(result);
  result = Aggregate(
      id, {{"dataset", "sales"}, {"dimensions", {"id"}}, {"metrics", {{{"function", "count"}}}}});
  EXPECT_NE(Text(result).find("'id' is not a dimension"), std::string::npos) << Text(result);

  // The grant says what it is.
  result = Tool("list_tables", {{"request_id", id}});
  EXPECT_EQ(result["structuredContent"]["tables"][0]["aggregate_only"].value("min_group_size", 0),
            kMinGroup)
      << result.dump();

  // The HTTPS tunnel: free SQL refused in the same words; an aggregate
  // call as a statement answers the same large groups.
  ClientResponse grant;
  TunnelSession tunnel = ConnectTunnel(*api_, id, Auth(kBot), pki_.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;
  auto answer = TunnelQuery(tunnel, "SELECT * FROM sales");
  EXPECT_EQ(answer.status, 403u) << answer.body;
  EXPECT_NE(answer.body.find("aggregate_only obligation on sales"), std::string::npos)
      << answer.body;
  answer = TunnelQuery(tunnel, "AGGREGATE " + by_region.dump());
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer.json()["rows"], json::parse(R"([["EU", 5, 150], ["US", 5, 400]])"))
      << answer.body;
  EXPECT_EQ(answer.body.find("APAC"), std::string::npos) << answer.body;

  // The explorer says the grant is aggregate-only, and why, before a query
  // fails; its sample query is an aggregate call the enclave answers.
  if (const std::string binary = HeadlessChromium::FindBinary(); !binary.empty()) {
    std::string error;
    auto browser = HeadlessChromium::Launch(binary, dir_.File("chromium-profile"), &error);
    ASSERT_NE(browser, nullptr) << error;
    ASSERT_TRUE(browser->OpenPage(grant.json().value("url", "") + "/", &error)) << error;
    ASSERT_TRUE(browser->WaitFor("document.body && document.body.dataset.ready === 'true'",
                                 std::chrono::seconds(20)))
        << browser->Log();
    const auto eval = [&](const std::string& expression) {
      std::string failure;
      json value = browser->Evaluate(expression, &failure);
      EXPECT_TRUE(failure.empty()) << failure;
      return value;
    };
    eval(
        "(() => { const e = document.getElementById('credential'); e.value = ''; e.focus(); "
        "return true; })()");
    ASSERT_TRUE(browser->Type(tunnel.credential, &error)) << error;
    eval("document.getElementById('connect').click(), true");
    ASSERT_TRUE(browser->WaitFor("!!document.querySelector('#tables .aggregate-only')",
                                 std::chrono::seconds(20)))
        << browser->Log();
    const std::string note =
        eval("document.querySelector('#tables .aggregate-only').textContent").get<std::string>();
    EXPECT_NE(note.find("aggregate_only"), std::string::npos) << note;
    EXPECT_NE(note.find("at least 3 rows, by region"), std::string::npos) << note;
    eval("document.querySelector('#tables button.table').click(), true");
    eval("document.getElementById('run').click(), true");
    ASSERT_TRUE(browser->WaitFor("document.querySelectorAll('#result tbody tr').length === 2",
                                 std::chrono::seconds(20)))
        << eval("document.getElementById('error').textContent").dump();
  }

  // A human analyst without the obligation reads the same data with SQL.
  const auto created =
      api_->Post("/v1/requests", R"({"datasets":["sales"],"purpose":"Audit"})", Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string full = created.json().value("id", "");
  ASSERT_EQ(WaitReady(full, kAlice), "ready");
  TunnelSession analyst = ConnectTunnel(*api_, full, Auth(kAlice), pki_.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;
  answer = TunnelQuery(analyst, "SELECT id FROM sales WHERE region = 'APAC' ORDER BY id");
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer.json()["rows"], json::parse("[[11], [12]]"));
}

TEST_F(CleanRoomE2E, AJobUnderTheObligationRunsItsAggregateCallsOnly) {
  const json by_region = {
      {"dataset", "sales"}, {"dimensions", {"region"}}, {"metrics", {{{"function", "count"}}}}};
  const json ask = {{"datasets", {"sales"}},
                    {"purpose", "Nightly mix"},
                    {"mode", "job"},
                    {"queries", {"SELECT region FROM sales", "AGGREGATE " + by_region.dump()}}};
  const auto created = api_->Post("/v1/requests", ask.dump(), Auth(kJobBot));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  json results;
  while (std::chrono::steady_clock::now() < give_up) {
    const auto listing = api_->Get("/v1/requests/" + id + "/results", Auth(kJobBot));
    if (listing.status == 200 && listing.json().value("state", "") == "finished") {
      results = listing.json()["results"];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(results.size(), 2u) << results.dump();
  EXPECT_EQ(results[0].value("outcome", ""), "permission_denied") << results[0].dump();
  EXPECT_NE(results[0].value("error", "").find("aggregate_only obligation on sales"),
            std::string::npos)
      << results[0].dump();
  EXPECT_EQ(results[1].value("outcome", ""), "ok") << results[1].dump();
  EXPECT_EQ(results[1].value("rows", 0), 2) << results[1].dump();  // EU and US, not APAC
}

class CleanRoomPgwireE2E : public CleanRoomE2E {
 protected:
  void SetUp() override { StartKernel(PgwireTunnelRef(TestPkiFor())); }
};

TEST_F(CleanRoomPgwireE2E, PsqlIsRefusedFreeSqlWithTheObligationNamed) {
  const std::string id = BotRequest();
  const auto grant = api_->Post("/v1/requests/" + id + "/credentials", "", Auth(kBot));
  ASSERT_EQ(grant.status, 200u) << grant.body;
  auto [code, out] = Psql(grant.json(), "SELECT region, amount FROM sales");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("aggregate_only obligation on sales"), std::string::npos) << out;
  EXPECT_EQ(out.find("APAC"), std::string::npos) << out;
  // The SQLSTATE a client sees is insufficient_privilege.
  std::tie(code, out) = Psql(grant.json(), "SELECT 1", "-v VERBOSITY=verbose");
  EXPECT_NE(out.find("42501"), std::string::npos) << out;
}

}  // namespace
}  // namespace airlock::test
