// The MCP endpoint driven by the official MCP TypeScript SDK client
// (@modelcontextprotocol/sdk from npm, installed by scripts/test.sh in
// tests/support/mcp) against a real airlockd: the agent asks for access, a
// human approves it over the HTTP API, the agent follows its request to
// ready and queries it; what it saw is checked here, and so is the audit.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAgent = "alk_mcp_agent_token_1";
constexpr const char* kBob = "alk_mcp_bob_token_2";
constexpr const char* kCarol = "alk_mcp_carol_token_3";

std::string Bearer(const char* token) {
  return std::string("Bearer ") + token;
}

class McpE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string sdk = std::string(AIRLOCK_SOURCE_DIR) +
                            "/tests/support/mcp/node_modules/@modelcontextprotocol/sdk";
    ASSERT_TRUE(std::filesystem::exists(sdk))
        << "the MCP SDK client is not installed: scripts/test.sh installs it (npm ci in "
           "tests/support/mcp)";
    pki_ = GenerateTestPki(dir_.path());
    // The agent's token names no kind: through /mcp it is an agent.
    const json agent_entry = {
        {"sha256", Sha256HexOf(kAgent)}, {"subject", "report-bot"}, {"groups", {"analysts"}}};
    const json identity = {{{"name", "tokens"},
                            {"plugin", PluginPath("airlock_identity_static_tokens")},
                            {"config",
                             {{"tokens",
                               {agent_entry, TokenEntry(kBob, "bob", "owners"),
                                TokenEntry(kCarol, "carol", "admins")}}}}}};
    json config = OrdersKernelConfig(dir_.path(), pki_, identity);
    config["datasets"][0]["description"] = "Every order, with its amount";
    config["datasets"][0]["columns"] = {{{"name", "order_id"}, {"type", "int64"}},
                                        {{"name", "amount"}, {"type", "int64"}}};
    config["access"] = {{"admin_groups", {"admins"}}};
    config["mcp"] = {{"authorization_servers", {"https://login.example.com"}}};
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    base_ = "http://127.0.0.1:" + std::to_string(kernel_->port());
  }

  // Waits for the agent's report file; null if it never came.
  json WaitForReport(const std::string& path, std::chrono::seconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      if (std::filesystem::exists(path)) return json::parse(std::ifstream(path));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return nullptr;
  }

  TempDir dir_;
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
  std::string base_;
};

TEST_F(McpE2E, TheSdkClientAsksIsApprovedByAHumanAndQueriesItsGrant) {
  const std::string report_path = dir_.File("agent-report.json");
  ChildProcess agent({"node", std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/mcp/agent.mjs",
                      base_ + "/mcp", kAgent, report_path},
                     std::chrono::seconds(60));
  const json asked = json::parse(agent.ready_line(), nullptr, false);
  ASSERT_TRUE(asked.is_object()) << agent.ready_line();
  ASSERT_TRUE(asked.contains("request_id")) << agent.ready_line();
  const std::string id = asked["request_id"];
  EXPECT_EQ(asked.value("state", ""), "pending_approval");

  // A human approves over the HTTP API while the agent waits.
  HttpClient api("127.0.0.1", kernel_->port());
  const auto approved =
      api.Post("/v1/requests/" + id + "/approve", R"({"comment":"fine for the weekly report"})",
               {{"Authorization", Bearer(kBob)}, {"Content-Type", "application/json"}});
  ASSERT_EQ(approved.status, 200u) << approved.body;

  // The agent's second ask waits in its call: approved once it is queued.
  std::string waiting;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (waiting.empty() && std::chrono::steady_clock::now() < give_up) {
    const auto queue = api.Get("/v1/requests?awaiting=me", {{"Authorization", Bearer(kBob)}});
    const json listed = queue.json().value("requests", json::array());
    for (const json& request : listed) {
      if (request.value("id", "") != id) waiting = request.value("id", "");
    }
    if (waiting.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(waiting.empty()) << "the agent's waiting ask never reached the queue";
  // Held a moment: the call is still open, waiting for this decision.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(std::filesystem::exists(report_path));
  ASSERT_EQ(api.Post("/v1/requests/" + waiting + "/approve", "{}",
                     {{"Authorization", Bearer(kBob)}, {"Content-Type", "application/json"}})
                .status,
            200u);

  const json report = WaitForReport(report_path, std::chrono::seconds(90));
  ASSERT_TRUE(report.is_object()) << "the agent wrote no report";
  ASSERT_FALSE(report.contains("error")) << report.dump(2);

  // Without a token: 401, and the challenge names the resource metadata.
  EXPECT_EQ(report["unauthenticated"]["status"], 401);
  const std::string challenge = report["unauthenticated"].value("www_authenticate", "");
  EXPECT_NE(challenge.find("Bearer"), std::string::npos) << challenge;
  EXPECT_NE(challenge.find("resource_metadata=\"" + base_ +
                           "/.well-known/oauth-protected-resource/mcp\""),
            std::string::npos)
      << challenge;
  EXPECT_EQ(report["sdk_without_token"].value("code", 0), 401) << report["sdk_without_token"];
  EXPECT_EQ(report["metadata"].value("resource", ""), base_ + "/mcp");
  EXPECT_EQ(report["metadata"]["authorization_servers"], json({"https://login.example.com"}));

  // The session: the newest protocol revision, the seven tools.
  EXPECT_EQ(report["server"].value("name", ""), "airlock");
  EXPECT_EQ(report["protocol_version"], "2025-11-25");
  EXPECT_EQ(report["tools"], json({"list_datasets", "describe_dataset", "request_access",
                                   "request_status", "list_tables", "query", "aggregate"}));

  // The catalog with the policy's answer for this agent.
  const json& datasets = report["list_datasets"]["structured"]["datasets"];
  ASSERT_EQ(datasets.size(), 1u) << report["list_datasets"].dump();
  EXPECT_EQ(datasets[0].value("name", ""), "orders");
  EXPECT_EQ(datasets[0]["for_me"].value("effect", ""), "needs_approval");
  EXPECT_EQ(report["describe"]["structured"]["columns"].size(), 2u);
  EXPECT_TRUE(report["describe_unknown"].value("isError", false));
  EXPECT_NE(report["describe_unknown"].value("text", "").find("no_such_dataset"),
            std::string::npos);
  EXPECT_EQ(report["resources"], json({"airlock://datasets/orders/schema"}));
  EXPECT_EQ(report["schema"].value("name", ""), "orders");
  EXPECT_TRUE(report["query_before_ready"].value("isError", false));

  // Its request: asked by an agent, followed to ready.
  EXPECT_EQ(report["asked"]["structured"]["requester"].value("kind", ""), "agent")
      << report["asked"].dump();
  ASSERT_FALSE(report["states"].empty());
  EXPECT_EQ(report["states"].front(), "pending_approval") << report["states"];
  EXPECT_EQ(report["states"].back(), "ready") << report["states"];

  // Its data, through its own grant.
  EXPECT_FALSE(report["tables"].value("isError", true)) << report["tables"].dump();
  EXPECT_NE(report["tables"]["structured"].dump().find("orders"), std::string::npos);
  ASSERT_FALSE(report["query"].value("isError", true)) << report["query"].dump();
  EXPECT_EQ(report["query"]["structured"]["rows"], json::parse("[[2, 30]]"));
  EXPECT_EQ(report["query"]["structured"]["columns"][0].value("name", ""), "n");
  EXPECT_FALSE(report["query"]["structured"].value("truncated", true));
  EXPECT_EQ(report["capped"]["structured"]["rows"], json::parse("[[1]]"));
  EXPECT_TRUE(report["capped"]["structured"].value("truncated", false));
  ASSERT_FALSE(report["aggregate"].value("isError", true)) << report["aggregate"].dump();
  EXPECT_EQ(report["aggregate"]["structured"]["rows"], json::parse("[[1, 1, 10], [2, 1, 20]]"));
  EXPECT_EQ(report["aggregate"]["structured"]["columns"][2].value("name", ""), "sum_amount");
  EXPECT_TRUE(report["bad_sql"].value("isError", false));
  EXPECT_NE(report["bad_sql"].value("text", "").find("no such table: nowhere"), std::string::npos)
      << report["bad_sql"];
  EXPECT_TRUE(report["missing_argument"].value("isError", false));
  EXPECT_EQ(report["missing_argument"].value("text", ""), "sql is required");
  EXPECT_EQ(report["unknown_tool"].value("code", 0), -32602) << report["unknown_tool"];

  // The waiting ask: answered once ready, told each state on the way.
  const json& waited = report["waited"];
  EXPECT_FALSE(waited.value("isError", true)) << waited.dump();
  EXPECT_EQ(waited["structured"].value("id", ""), waiting);
  EXPECT_EQ(waited["structured"].value("state", ""), "ready") << waited.dump();
  std::vector<std::string> told;
  for (const json& p : waited["progress"]) told.push_back(p.value("message", ""));
  ASSERT_GE(told.size(), 3u) << waited.dump();
  EXPECT_EQ(told.front(), "request " + waiting + " is pending_approval");
  EXPECT_EQ(told.back(), "request " + waiting + " is ready");
  EXPECT_NE(std::find(told.begin(), told.end(), "request " + waiting + " is approved"), told.end())
      << waited.dump();

  // Only the requester reads through its grant: the approver may not.
  const auto foreign = api.Post(
      "/mcp",
      json{
          {"jsonrpc", "2.0"},
          {"id", 1},
          {"method", "tools/call"},
          {"params", {{"name", "query"}, {"arguments", {{"request_id", id}, {"sql", "SELECT 1"}}}}}}
          .dump(),
      {{"Authorization", Bearer(kBob)}, {"Content-Type", "application/json"}});
  ASSERT_EQ(foreign.status, 200u) << foreign.body;
  EXPECT_TRUE(foreign.json()["result"].value("isError", false)) << foreign.body;
  EXPECT_NE(foreign.body.find("only the requester"), std::string::npos) << foreign.body;

  // Every call is in the audit: the agent's principal, the tool, the SQL's
  // hash and the rows; the query also as a tunnel query over "mcp".
  const auto trail = api.Get("/v1/audit?request=" + id, {{"Authorization", Bearer(kCarol)}});
  ASSERT_EQ(trail.status, 200u) << trail.body;
  const json records = trail.json()["records"];
  int tool_calls = 0, queries = 0, tunnel_queries = 0;
  for (const json& record : records) {
    if (record.value("event", "") == "mcp.tool_call") {
      ++tool_calls;
      if (record["principal"].value("subject", "") == "bob") continue;
      EXPECT_EQ(record["principal"].value("kind", ""), "agent") << record.dump();
      EXPECT_EQ(record["principal"].value("subject", ""), "report-bot");
      if (record.value("tool", "") == "query" && record.value("outcome", "") == "ok") {
        ++queries;
        EXPECT_EQ(record.value("sql_sha256", "").size(), 64u) << record.dump();
        EXPECT_TRUE(record.contains("rows")) << record.dump();
      }
    }
    if (record.value("event", "") == "tunnel.query" && record.value("transport", "") == "mcp") {
      ++tunnel_queries;
    }
  }
  EXPECT_GE(tool_calls, 6) << trail.body;
  EXPECT_EQ(queries, 2) << trail.body;
  EXPECT_EQ(tunnel_queries, 4) << trail.body;  // two queries and the aggregate, one refused
  agent.Stop();
}

TEST_F(McpE2E, BadMessagesGetClearAnswers) {
  HttpClient api("127.0.0.1", kernel_->port());
  const auto post = [&](const std::string& body, const std::string& type = "application/json",
                        std::vector<std::pair<std::string, std::string>> extra = {}) {
    extra.emplace_back("Authorization", Bearer(kAgent));
    extra.emplace_back("Content-Type", type);
    return api.Post("/mcp", body, extra);
  };
  // Not JSON: a JSON-RPC parse error.
  auto r = post("{not json");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.json()["error"].value("code", 0), -32700) << r.body;
  // A batch (no longer in the protocol) or not JSON-RPC 2.0.
  r = post(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  EXPECT_EQ(r.json()["error"].value("code", 0), -32600) << r.body;
  r = post(R"({"id":1,"method":"ping"})");
  EXPECT_EQ(r.json()["error"].value("code", 0), -32600) << r.body;
  // Duplicate keys are refused, not resolved silently.
  r = post(R"({"jsonrpc":"2.0","id":1,"id":2,"method":"ping"})");
  EXPECT_EQ(r.status, 400u) << r.body;
  // Unknown methods; a ping answers.
  r = post(R"({"jsonrpc":"2.0","id":"a","method":"sampling/createMessage"})");
  EXPECT_EQ(r.json()["error"].value("code", 0), -32601) << r.body;
  EXPECT_EQ(r.json()["id"], "a");
  r = post(R"({"jsonrpc":"2.0","id":7,"method":"ping"})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.json()["result"], json::object()) << r.body;
  // A notification is taken with 202 and no answer.
  r = post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(r.status, 202u) << r.body;
  EXPECT_TRUE(r.body.empty()) << r.body;
  // The wrong media type, an unknown protocol revision, a foreign page.
  r = post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "text/plain");
  EXPECT_EQ(r.status, 415u) << r.body;
  r = post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "application/json",
           {{"MCP-Protocol-Version", "1999-01-01"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("1999-01-01"), std::string::npos) << r.body;
  r = post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "application/json",
           {{"Origin", "https://evil.example"}});
  EXPECT_EQ(r.status, 403u) << r.body;
  // An older client is answered in its revision.
  r = post(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":
            "2025-03-26","capabilities":{},"clientInfo":{"name":"old","version":"1"}}})");
  EXPECT_EQ(r.json()["result"].value("protocolVersion", ""), "2025-03-26") << r.body;
  // No standalone event stream and no sessions: GET and DELETE are 405.
  EXPECT_EQ(api.Get("/mcp", {{"Authorization", Bearer(kAgent)}}).status, 405u);
  EXPECT_EQ(api.Request("DELETE", "/mcp", "", {{"Authorization", Bearer(kAgent)}}).status, 405u);
  // An unknown resource, and an argument of the wrong type.
  r = post(
      R"({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///etc/passwd"}})");
  EXPECT_EQ(r.json()["error"].value("code", 0), -32002) << r.body;
  r = post(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"request_status",
            "arguments":{"request_id":42}}})");
  EXPECT_TRUE(r.json()["result"].value("isError", false)) << r.body;
  EXPECT_NE(r.body.find("request_id must be a string"), std::string::npos) << r.body;
  // A wait that runs out answers with the request as it is, after telling
  // its state, as a stream.
  r = post(R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"request_access",
            "arguments":{"datasets":["orders"],"purpose":"Waiting test","wait_seconds":1},
            "_meta":{"progressToken":"tok-1"}}})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("Content-Type").substr(0, 17), "text/event-stream") << r.body;
  const size_t progress = r.body.find("\"method\":\"notifications/progress\"");
  const size_t answer = r.body.find("\"id\":9");
  ASSERT_NE(progress, std::string::npos) << r.body;
  ASSERT_NE(answer, std::string::npos) << r.body;
  EXPECT_LT(progress, answer) << r.body;
  EXPECT_NE(r.body.find("\"progressToken\":\"tok-1\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"state\":\"pending_approval\""), std::string::npos) << r.body;
  r = post(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"request_access",
            "arguments":{"datasets":["orders"],"purpose":"x","wait_seconds":301}}})");
  EXPECT_NE(r.body.find("wait_seconds must be an integer from 0 to 300"), std::string::npos)
      << r.body;

  // The same token on the REST API is not an agent: the door decides.
  const auto me = api.Get("/v1/me", {{"Authorization", Bearer(kAgent)}});
  EXPECT_EQ(me.json().value("kind", ""), "human") << me.body;
}

}  // namespace
}  // namespace airlock::test
