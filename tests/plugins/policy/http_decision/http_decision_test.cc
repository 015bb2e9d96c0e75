// Loads the built http-decision plugin through the C ABI and points it at a
// real decision service on 127.0.0.1 (plain and TLS) that answers in the
// Open Policy Agent REST data API shape, including every failure it must
// turn into "no decision" (fail closed).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/support/dl_plugin.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_http_server.h"
#include "tests/support/test_pki.h"

namespace airlock {
namespace {

using DecisionReply = test::ScriptedReply;
using DecisionRequest = test::ReceivedRequest;
using DecisionServer = test::TestHttpServer;
using testing::DlInstance;
using testing::DlPlugin;
using testing::FakeHost;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_policy_http_decision.so";
constexpr char kToken[] = "s3cr3t-decision-token";

Json Input() {
  return Json::parse(R"({
    "principal": {"subject": "alice", "kind": "human", "groups": ["analysts"]},
    "request": {"id": "req_1", "datasets": ["customers"], "window_seconds": 600,
                "purpose": "fraud-review", "mode": "interactive"},
    "datasets": [{"name": "customers", "tags": ["pii"]}],
    "now": 1767225600})");
}

DecisionServer::Handler Answer(unsigned status, std::string body) {
  return [status, body](const DecisionRequest&) { return DecisionReply{status, body}; };
}

// A host whose secret service hands out kToken for env:DECISION_TOKEN (and
// refuses everything else), on top of FakeHost's logging.
class SecretHost {
 public:
  SecretHost() {
    services_ = *fake_.services();
    services_.secret_resolve = [](void*, const char* ref, size_t length, airlock_type_secret* out,
                                  airlock_type_error* error) -> airlock_type_status {
      if (std::string_view(ref, length) != "env:DECISION_TOKEN") {
        abi::FillError(error, "no such secret");
        return AIRLOCK_ERR_NOT_FOUND;
      }
      std::memset(out, 0, sizeof(*out));
      out->data = reinterpret_cast<const uint8_t*>(kToken);
      out->length = std::strlen(kToken);
      out->release = [](airlock_type_secret* s) { s->release = nullptr; };
      return AIRLOCK_OK;
    };
  }
  const airlock_host_services* services() const { return &services_; }
  std::vector<std::string> logs() const { return fake_.logs(); }

 private:
  FakeHost fake_;
  airlock_host_services services_;
};

class HttpDecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, host_.services(), &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_POLICY);
    ASSERT_EQ(std::string(plugin_->info().name), "http-decision");
  }

  const airlock_type_policy_vtable& table() const {
    return plugin_->vtable<airlock_type_policy_vtable>();
  }

  Json Config(uint16_t port, const std::string& scheme = "http") {
    return {{"url", scheme + "://127.0.0.1:" + std::to_string(port)},
            {"decision_path", "airlock/decision"},
            {"connect_timeout_ms", 1000},
            {"timeout_ms", 2000}};
  }

  std::unique_ptr<DlInstance<airlock_type_policy_vtable>> Create(const Json& config) {
    auto instance =
        std::make_unique<DlInstance<airlock_type_policy_vtable>>(table(), config.dump());
    EXPECT_TRUE(instance->ok()) << instance->error();
    return instance;
  }

  struct Outcome {
    airlock_type_status status;
    Json decision;
    std::string error;
  };

  Outcome Evaluate(void* instance, const Json& input = Input()) {
    const std::string text = input.dump();
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    Outcome out;
    out.status = table().evaluate(instance, text.data(), text.size(), buffer.get(), error.get());
    out.error = error.message();
    if (out.status == AIRLOCK_OK) out.decision = Json::parse(buffer.view());
    return out;
  }

  SecretHost host_;
  std::unique_ptr<DlPlugin> plugin_;
};

TEST_F(HttpDecisionTest, AllowDenyAndApprovalPassThroughInOpaShape) {
  struct Case {
    const char* name;
    std::string result;
    std::string effect;
  };
  const std::vector<Case> cases = {
      {"allow",
       R"({"effect": "allow", "reason": "analysts may", "rule": "opa.analysts", "max_window_seconds": 900})",
       "allow"},
      {"deny", R"({"effect": "deny", "reason": "not on weekends", "rule": "opa.weekend"})", "deny"},
      {"needs_approval with obligations",
       R"({"effect": "needs_approval", "reason": "pii", "rule": "opa.pii",
           "approval": {"groups": ["owners", "security"], "count": 2, "timeout_seconds": 600},
           "obligations": {"customers": {"columns": ["id", "email"], "masks": {"email": "hash"},
                           "row_filter": [{"column": "country", "op": "eq", "value": "DE"}]}}})",
       "needs_approval"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    DecisionServer server(Answer(200, R"({"result": )" + c.result + "}"));
    auto instance = Create(Config(server.port()));
    Outcome out = Evaluate(instance->get());
    ASSERT_EQ(out.status, AIRLOCK_OK) << out.error;
    const Json expected = Json::parse(c.result);
    EXPECT_EQ(out.decision["effect"], c.effect);
    EXPECT_EQ(out.decision["reason"], expected["reason"]);
    EXPECT_EQ(out.decision["rule"], expected["rule"]);
    if (c.effect == "needs_approval") {
      EXPECT_EQ(out.decision["approval"]["count"], 2);
      EXPECT_EQ(out.decision["approval"]["groups"], Json({"owners", "security"}));
      EXPECT_EQ(out.decision["obligations"]["customers"]["masks"], Json({{"email", "hash"}}));
      EXPECT_EQ(out.decision["obligations"]["customers"]["row_filter"][0]["value"], "DE");
    }
    // What the service saw: POST /v1/data/<path> with {"input": <policy input>}.
    const auto seen = server.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].method, "POST");
    EXPECT_EQ(seen[0].target, "/v1/data/airlock/decision");
    EXPECT_EQ(seen[0].Header("Content-Type"), "application/json");
    EXPECT_TRUE(seen[0].Header("Authorization").empty());
    const Json body = Json::parse(seen[0].body);
    EXPECT_EQ(body["input"]["principal"]["subject"], "alice");
    EXPECT_EQ(body["input"]["request"]["purpose"], "fraud-review");
    EXPECT_EQ(body["input"]["datasets"][0]["tags"], Json({"pii"}));
    EXPECT_EQ(body["input"]["now"], 1767225600);
  }
}

TEST_F(HttpDecisionTest, MissingRuleAndReasonAreFilledSoEveryDecisionNamesItsSource) {
  DecisionServer server(Answer(200, R"({"result": {"effect": "allow"}})"));
  auto instance = Create(Config(server.port()));
  Outcome out = Evaluate(instance->get());
  ASSERT_EQ(out.status, AIRLOCK_OK) << out.error;
  EXPECT_EQ(out.decision["rule"], "http-decision:airlock/decision");
  EXPECT_EQ(out.decision["reason"], "decided by data.airlock/decision");
}

TEST_F(HttpDecisionTest, EveryFailureIsUnavailableNeverAGrant) {
  struct Case {
    const char* name;
    unsigned status;
    std::string body;
    std::string error;  // substring
  };
  const std::vector<Case> cases = {
      {"undefined result", 200, "{}", "data.airlock/decision is undefined (no result)"},
      {"null result", 200, R"({"result": null})", "is undefined"},
      {"malformed JSON", 200, R"({"result": {"effect": "allow")", "its answer is not JSON"},
      {"not an object", 200, "[1, 2]", "not a JSON object"},
      {"server error", 500, R"({"result": {"effect": "allow"}})", "it answered HTTP 500"},
      {"forbidden", 403, R"({"code": "unauthorized"})", "it answered HTTP 403"},
      {"result without effect", 200, R"({"result": true})", "is not a decision document"},
      {"unknown effect", 200, R"({"result": {"effect": "maybe"}})", "is not a valid decision"},
      {"approval without groups", 200, R"({"result": {"effect": "needs_approval"}})",
       "is not a valid decision"},
      {"bad row filter", 200,
       R"({"result": {"effect": "allow", "obligations": {"x": {"row_filter": [{"column": "a", "op": "between", "value": 1}]}}}})",
       "is not a valid decision"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    DecisionServer server(Answer(c.status, c.body));
    auto instance = Create(Config(server.port()));
    Outcome out = Evaluate(instance->get());
    EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE);
    EXPECT_NE(out.error.find("decision service gave no usable decision"), std::string::npos)
        << out.error;
    EXPECT_NE(out.error.find(c.error), std::string::npos) << out.error;
  }
}

TEST_F(HttpDecisionTest, SlowAnswerHitsTheTotalTimeout) {
  DecisionServer server([](const DecisionRequest&) {
    DecisionReply reply{200, R"({"result": {"effect": "allow"}})"};
    reply.hold = true;
    return reply;
  });
  Json config = Config(server.port());
  config["timeout_ms"] = 300;
  auto instance = Create(config);
  const auto start = std::chrono::steady_clock::now();
  Outcome out = Evaluate(instance->get());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  server.Release();
  EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE);
  EXPECT_NE(out.error.find("did not answer within 300 ms"), std::string::npos) << out.error;
  EXPECT_GE(elapsed, std::chrono::milliseconds(290));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST_F(HttpDecisionTest, ConnectionRefusedIsUnavailable) {
  uint16_t port = 0;
  {
    // A port that was just free: nothing listens on it any more.
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  auto instance = Create(Config(port));
  Outcome out = Evaluate(instance->get());
  EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE);
  EXPECT_NE(out.error.find("cannot connect to 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << out.error;
}

TEST_F(HttpDecisionTest, OversizedAnswerIsRefused) {
  const std::string big =
      R"({"result": {"effect": "allow", "reason": ")" + std::string(8192, 'x') + R"("}})";
  DecisionServer server(Answer(200, big));
  Json config = Config(server.port());
  config["max_response_bytes"] = 4096;
  auto instance = Create(config);
  Outcome out = Evaluate(instance->get());
  EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE);
  EXPECT_NE(out.error.find("exceeds 4096 bytes"), std::string::npos) << out.error;
}

TEST_F(HttpDecisionTest, KeepAliveReusesOneConnection) {
  DecisionServer server(Answer(200, R"({"result": {"effect": "deny", "reason": "no"}})"));
  auto instance = Create(Config(server.port()));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Evaluate(instance->get()).status, AIRLOCK_OK);
  EXPECT_EQ(server.requests().size(), 5u);
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(HttpDecisionTest, StalePooledConnectionIsRetriedOnceOnAFreshOne) {
  // The service closes every connection after answering, without saying so.
  DecisionServer server([](const DecisionRequest&) {
    DecisionReply reply{200, R"({"result": {"effect": "allow"}})"};
    reply.close_after = true;
    return reply;
  });
  auto instance = Create(Config(server.port()));
  for (int i = 0; i < 3; ++i) {
    Outcome out = Evaluate(instance->get());
    ASSERT_EQ(out.status, AIRLOCK_OK) << out.error;
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST_F(HttpDecisionTest, ConcurrentCallsShareABoundedPool) {
  DecisionServer server(Answer(200, R"({"result": {"effect": "allow"}})"));
  Json config = Config(server.port());
  config["max_connections"] = 2;
  auto instance = Create(config);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        if (Evaluate(instance->get()).status == AIRLOCK_OK) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 60);
  EXPECT_LE(server.connections(), 2);
}

TEST_F(HttpDecisionTest, TlsVerifiesTheServiceAgainstTheConfiguredCa) {
  test::TempDir dir("airlock-http-decision-");
  const test::TestPki pki = test::GenerateTestPki(dir.path());
  DecisionServer server(Answer(200, R"({"result": {"effect": "allow", "rule": "tls"}})"),
                        pki.server.cert_file, pki.server.key_file);
  Json config = Config(server.port(), "https");
  config["tls"] = {{"ca_file", pki.ca.cert_file}};
  {
    auto instance = Create(config);
    Outcome out = Evaluate(instance->get());
    ASSERT_EQ(out.status, AIRLOCK_OK) << out.error;
    EXPECT_EQ(out.decision["rule"], "tls");
  }
  // The certificate is valid for localhost too (SNI and name check).
  config["url"] = "https://localhost:" + std::to_string(server.port());
  {
    auto instance = Create(config);
    EXPECT_EQ(Evaluate(instance->get()).status, AIRLOCK_OK);
  }
  // Signed by a CA we do not trust: refused.
  config["tls"] = {{"ca_file", pki.other_ca.cert_file}};
  {
    auto instance = Create(config);
    Outcome out = Evaluate(instance->get());
    EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE);
    EXPECT_NE(out.error.find("TLS handshake"), std::string::npos) << out.error;
  }
  // Trusted CA but the wrong name: refused.
  config["tls"] = {{"ca_file", pki.ca.cert_file}, {"server_name", "decisions.example"}};
  {
    auto instance = Create(config);
    Outcome out = Evaluate(instance->get());
    EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE);
    EXPECT_NE(out.error.find("TLS handshake"), std::string::npos) << out.error;
  }
  // Plain HTTP to a TLS port: no decision.
  config = Config(server.port());
  {
    auto instance = Create(config);
    EXPECT_EQ(Evaluate(instance->get()).status, AIRLOCK_ERR_UNAVAILABLE);
  }
}

TEST_F(HttpDecisionTest, BearerTokenIsSentButNeverLogged) {
  DecisionServer server(Answer(500, "{}"));
  Json config = Config(server.port());
  config["bearer_token_secret"] = "env:DECISION_TOKEN";
  auto instance = Create(config);
  Outcome out = Evaluate(instance->get());
  EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE);
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].Header("Authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(out.error.find(kToken), std::string::npos);
  for (const auto& line : host_.logs()) EXPECT_EQ(line.find(kToken), std::string::npos) << line;

  // A reference the host cannot resolve fails creation: never call unauthenticated.
  config["bearer_token_secret"] = "env:MISSING";
  DlInstance<airlock_type_policy_vtable> refused(table(), config.dump());
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("bearer_token_secret"), std::string::npos) << refused.error();
}

TEST_F(HttpDecisionTest, ConfigurationIsValidated) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"decision_path", "a"}}, "url is required"},
      {{{"url", "ftp://x"}, {"decision_path", "a"}}, "url must use http or https"},
      {{{"url", "http://u:p@x"}, {"decision_path", "a"}}, "must not carry credentials"},
      {{{"url", "http://x"}, {"decision_path", "../a"}}, "decision_path must be"},
      {{{"url", "http://x"}, {"decision_path", "a"}, {"timeout_ms", 0}}, "timeout_ms must be"},
      {{{"url", "http://x"}, {"decision_path", "a"}, {"tls", {{"ca_file", "x"}}}},
       "tls is only valid with an https:// url"},
      {{{"url", "http://x"}, {"decision_path", "a"}, {"bearer_token_secret", "abc123"}},
       "must be a secret reference"},
      {{{"url", "http://x"}, {"decision_path", "a"}, {"colour", 1}}, "unknown key 'colour'"},
      {{{"url", "https://x"}, {"decision_path", "a"}, {"tls", {{"ca_file", "/nonexistent.pem"}}}},
       "ca_file '/nonexistent.pem' cannot be loaded"},
  };
  for (const auto& [config, expected] : cases) {
    SCOPED_TRACE(expected);
    DlInstance<airlock_type_policy_vtable> instance(table(), config.dump());
    EXPECT_EQ(instance.status(), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(instance.error().find(expected), std::string::npos) << instance.error();
    EXPECT_EQ(instance.error().find("abc123"), std::string::npos);
  }
}

}  // namespace
}  // namespace airlock
