// Loads the built webhook notifier through the C ABI and delivers to a real
// HTTPS receiver on 127.0.0.1, checking what arrives (body, headers, the
// signature, verified by an independent implementation) and how every
// failure maps onto retry or give-up.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/plugins/notifiers/notifier_test_host.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_http_server.h"
#include "tests/support/test_pki.h"
#include "tests/support/webhook_signature.h"

namespace airlock {
namespace {

using test::NotifierHost;
using test::NotifierPlugin;
using test::ReceivedRequest;
using test::ScriptedReply;
using test::TestHttpServer;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_notifier_webhook.so";
constexpr char kSecret[] = "whsec-7e1f0c2a9b4d4f58a1c3";
constexpr int64_t kNow = test::kOccurredAt + 7;

TestHttpServer::Handler Answer(unsigned status, std::string body = "") {
  return [status, body](const ReceivedRequest&) { return ScriptedReply{status, body}; };
}

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.SetSecret("env:WEBHOOK_SECRET", kSecret);
    host_.set_now_unix(kNow);
    plugin_ = std::make_unique<NotifierPlugin>(kPluginPath, host_.services());
    ASSERT_TRUE(plugin_->loaded());
    pki_ = test::GenerateTestPki(dir_.path());
  }

  Json TlsConfig(const TestHttpServer& server) const {
    return {{"url", server.url("/hooks/airlock")},
            {"secret", "env:WEBHOOK_SECRET"},
            {"ca_file", pki_.ca.cert_file},
            {"timeout_ms", 5000}};
  }
  Json PlainConfig(const TestHttpServer& server) const {
    return {{"url", server.url("/hooks/airlock")},
            {"secret", "env:WEBHOOK_SECRET"},
            {"allow_plaintext_http", true},
            {"timeout_ms", 5000}};
  }
  std::unique_ptr<NotifierPlugin::Instance> Create(const Json& config) {
    auto instance = plugin_->Create(config);
    EXPECT_TRUE(instance->ok()) << instance->error();
    return instance;
  }
  // Every error text the plugin produced must be free of the secret.
  void ExpectNoSecretIn(const std::string& text) {
    EXPECT_EQ(text.find(kSecret), std::string::npos) << text;
  }

  NotifierHost host_;
  std::unique_ptr<NotifierPlugin> plugin_;
  test::TempDir dir_{"airlock-webhook-"};
  test::TestPki pki_;
};

TEST_F(WebhookTest, ManifestDeclaresANotifierWithSchemaAndConfigCheck) {
  EXPECT_EQ(plugin_->info().kind, AIRLOCK_KIND_NOTIFIER);
  EXPECT_EQ(std::string(plugin_->info().name), "webhook");
  ASSERT_NE(plugin_->info().config_schema, nullptr);
  EXPECT_TRUE(Json::parse(plugin_->info().config_schema).is_object());
  EXPECT_NE(plugin_->info().check_config, nullptr);
  EXPECT_GE(plugin_->table().size, AIRLOCK_NOTIFIER_VTABLE_1_2_SIZE);
}

TEST_F(WebhookTest, DeliversTheDocumentSignedWithIdempotencyKeyAndEvent) {
  TestHttpServer server(Answer(204), pki_.server.cert_file, pki_.server.key_file);
  auto instance = Create(TlsConfig(server));
  const Json doc = test::PendingApproval();
  const auto out = plugin_->Deliver(instance->get(), doc);
  ASSERT_EQ(out.status, AIRLOCK_OK) << out.error;

  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  const ReceivedRequest& r = seen[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/airlock");
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_EQ(r.Header("Airlock-Idempotency-Key"), "r-7f3a/3/ops-webhook");
  EXPECT_EQ(r.Header("Airlock-Event"), "request.pending_approval");
  EXPECT_EQ(r.HeaderCount("Airlock-Signature"), 1u);
  // The body is the document, unknown members included, as compact JSON.
  EXPECT_EQ(Json::parse(r.body), doc);
  EXPECT_EQ(r.body, doc.dump());

  const std::string signature = r.Header("Airlock-Signature");
  EXPECT_EQ(signature.rfind("t=" + std::to_string(kNow) + ",v1=", 0), 0u) << signature;
  std::string why;
  EXPECT_TRUE(test::VerifyAirlockSignature(kSecret, signature, r.body, kNow, 300, &why)) << why;
  // The receiver's clock a little off either way is fine.
  EXPECT_TRUE(test::VerifyAirlockSignature(kSecret, signature, r.body, kNow + 299, 300));
  EXPECT_TRUE(test::VerifyAirlockSignature(kSecret, signature, r.body, kNow - 299, 300));
  // Wrong secret, altered body, a replay outside the window: refused.
  EXPECT_FALSE(test::VerifyAirlockSignature("whsec-other", signature, r.body, kNow, 300));
  std::string altered = r.body;
  altered.replace(altered.find("orders"), 6, "salary");
  EXPECT_FALSE(test::VerifyAirlockSignature(kSecret, signature, altered, kNow, 300));
  EXPECT_FALSE(test::VerifyAirlockSignature(kSecret, signature, r.body, kNow + 301, 300, &why));
  EXPECT_EQ(why, "timestamp outside the tolerance window");
  // The timestamp is signed: moving it breaks the signature.
  std::string moved = signature;
  moved.replace(2, std::to_string(kNow).size(), std::to_string(kNow + 60));
  EXPECT_FALSE(test::VerifyAirlockSignature(kSecret, moved, r.body, kNow, 300));
}

TEST_F(WebhookTest, EveryAttemptCarriesTheSameKeyAndResolvesTheSecretAgain) {
  TestHttpServer server(Answer(200, "{}"), pki_.server.cert_file, pki_.server.key_file);
  auto instance = Create(TlsConfig(server));
  Json doc = test::PendingApproval();
  const int before = host_.resolutions();
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  // The secret is rotated between attempts: the next delivery signs with the new one.
  host_.SetSecret("env:WEBHOOK_SECRET", "whsec-rotated");
  doc["attempt"] = 2;
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  EXPECT_EQ(host_.resolutions(), before + 2);

  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].Header("Airlock-Idempotency-Key"), seen[1].Header("Airlock-Idempotency-Key"));
  EXPECT_TRUE(test::VerifyAirlockSignature(kSecret, seen[0].Header("Airlock-Signature"),
                                           seen[0].body, kNow, 300));
  EXPECT_TRUE(test::VerifyAirlockSignature("whsec-rotated", seen[1].Header("Airlock-Signature"),
                                           seen[1].body, kNow, 300));
  EXPECT_FALSE(test::VerifyAirlockSignature(kSecret, seen[1].Header("Airlock-Signature"),
                                            seen[1].body, kNow, 300));
}

TEST_F(WebhookTest, UntrustedServerCertificateIsRefusedBeforeAnythingIsSent) {
  TestHttpServer server(Answer(200), pki_.server.cert_file, pki_.server.key_file);
  Json config = TlsConfig(server);
  config["ca_file"] = pki_.other_ca.cert_file;
  auto instance = Create(config);
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_NE(out.status, AIRLOCK_OK);
  // Retrying cannot make the certificate trusted: given up, and said why.
  EXPECT_EQ(out.status, AIRLOCK_ERR_PERMISSION_DENIED) << out.error;
  EXPECT_NE(out.error.find("TLS verification of webhook at 127.0.0.1 failed"), std::string::npos)
      << out.error;
  EXPECT_NE(out.error.find("certificate"), std::string::npos) << out.error;
  EXPECT_TRUE(server.requests().empty());

  // Without ca_file the system trust store does not know the test CA either.
  config.erase("ca_file");
  auto system_trust = Create(config);
  EXPECT_EQ(plugin_->Deliver(system_trust->get(), test::PendingApproval()).status,
            AIRLOCK_ERR_PERMISSION_DENIED);
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(WebhookTest, ReceiverAnswersMapOntoRetryOrGiveUp) {
  struct Case {
    unsigned status;
    airlock_type_status expected;
  };
  const std::vector<Case> cases = {
      {200, AIRLOCK_OK},
      {202, AIRLOCK_OK},
      {500, AIRLOCK_ERR_UNAVAILABLE},
      {503, AIRLOCK_ERR_UNAVAILABLE},
      {408, AIRLOCK_ERR_UNAVAILABLE},
      {429, AIRLOCK_ERR_RESOURCE_EXHAUSTED},
      {400, AIRLOCK_ERR_INVALID_ARGUMENT},
      {404, AIRLOCK_ERR_INVALID_ARGUMENT},
      {410, AIRLOCK_ERR_INVALID_ARGUMENT},
      {301, AIRLOCK_ERR_INVALID_ARGUMENT},
      {401, AIRLOCK_ERR_PERMISSION_DENIED},
      {403, AIRLOCK_ERR_PERMISSION_DENIED},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.status);
    TestHttpServer server(Answer(c.status, R"({"error": "scripted"})"));
    auto instance = Create(PlainConfig(server));
    const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
    EXPECT_EQ(out.status, c.expected) << out.error;
    EXPECT_EQ(server.requests().size(), 1u);
    if (c.expected != AIRLOCK_OK) {
      EXPECT_NE(out.error.find("answered HTTP " + std::to_string(c.status)), std::string::npos)
          << out.error;
      EXPECT_NE(out.error.find("scripted"), std::string::npos) << out.error;
    }
    EXPECT_EQ(test::IsRetried(out.status), c.status >= 500 || c.status == 408 || c.status == 429);
  }
}

TEST_F(WebhookTest, RetryAfterIsReported) {
  TestHttpServer server([](const ReceivedRequest&) {
    ScriptedReply reply{429, "slow down"};
    reply.headers = {{"Retry-After", "30"}};
    return reply;
  });
  auto instance = Create(PlainConfig(server));
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_RESOURCE_EXHAUSTED);
  EXPECT_NE(out.error.find("retry after 30 s"), std::string::npos) << out.error;
}

TEST_F(WebhookTest, LongAnswersAreReadOnlyUpToTheBound) {
  // 4 MiB of answer: the delivery still ends with the status, and the quote
  // in the message stays short.
  TestHttpServer server(Answer(500, std::string(4 << 20, 'x')));
  auto instance = Create(PlainConfig(server));
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE) << out.error.substr(0, 200);
  EXPECT_LT(out.error.size(), 1024u);
}

TEST_F(WebhookTest, ConnectionRefusedIsRetried) {
  Json config = {{"url", "http://127.0.0.1:" + std::to_string(test::UnusedPort()) + "/x"},
                 {"secret", "env:WEBHOOK_SECRET"},
                 {"allow_plaintext_http", true}};
  auto instance = Create(config);
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE) << out.error;
  EXPECT_NE(out.error.find("webhook at 127.0.0.1 could not be reached"), std::string::npos)
      << out.error;
}

TEST_F(WebhookTest, ASlowReceiverHitsTheTimeout) {
  TestHttpServer server([](const ReceivedRequest&) {
    ScriptedReply reply{200, "{}"};
    reply.hold = true;
    return reply;
  });
  Json config = PlainConfig(server);
  config["timeout_ms"] = 300;
  auto instance = Create(config);
  const auto start = std::chrono::steady_clock::now();
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  server.Release();
  EXPECT_EQ(out.status, AIRLOCK_ERR_DEADLINE_EXCEEDED) << out.error;
  EXPECT_TRUE(test::IsRetried(out.status));
  EXPECT_GE(elapsed, std::chrono::milliseconds(290));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST_F(WebhookTest, PlainHttpIsRefusedUnlessAllowed) {
  TestHttpServer server(Answer(200));
  Json config = PlainConfig(server);
  config.erase("allow_plaintext_http");
  const auto instance = plugin_->Create(config);
  EXPECT_EQ(instance->status(), AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(instance->error().find("url must be an https:// URL"), std::string::npos)
      << instance->error();
  EXPECT_NE(instance->error().find("allow_plaintext_http"), std::string::npos);
  EXPECT_EQ(plugin_->CheckConfig(config).status, AIRLOCK_ERR_INVALID_ARGUMENT);

  config["allow_plaintext_http"] = true;
  auto allowed = Create(config);
  EXPECT_EQ(plugin_->Deliver(allowed->get(), test::PendingApproval()).status, AIRLOCK_OK);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(WebhookTest, TheSecretNeverAppearsInErrorsOrLogs) {
  std::vector<std::string> errors;
  {
    TestHttpServer server(Answer(500, "down"));
    auto instance = Create(PlainConfig(server));
    errors.push_back(plugin_->Deliver(instance->get(), test::PendingApproval()).error);
  }
  {
    TestHttpServer server(Answer(200), pki_.server.cert_file, pki_.server.key_file);
    Json config = TlsConfig(server);
    config["ca_file"] = pki_.other_ca.cert_file;
    auto instance = Create(config);
    errors.push_back(plugin_->Deliver(instance->get(), test::PendingApproval()).error);
  }
  {
    // The secret disappears between start-up and a delivery: retried later, never sent unsigned.
    TestHttpServer server(Answer(200));
    host_.SetSecret("env:OTHER", kSecret);
    Json config = PlainConfig(server);
    config["secret"] = "env:OTHER";
    auto instance = Create(config);
    host_.SetSecret("env:OTHER", "");
    auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
    EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE) << out.error;
    errors.push_back(out.error);
    host_.RemoveSecret("env:OTHER");
    out = plugin_->Deliver(instance->get(), test::PendingApproval());
    EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE) << out.error;
    EXPECT_NE(out.error.find("webhook secret env:OTHER could not be resolved"), std::string::npos)
        << out.error;
    errors.push_back(out.error);
    EXPECT_TRUE(server.requests().empty());
  }
  // The secret pasted into the configuration instead of a reference.
  Json pasted = {{"url", "https://hooks.example.com/x"}, {"secret", kSecret}};
  errors.push_back(plugin_->Create(pasted)->error());
  errors.push_back(plugin_->CheckConfig(pasted).error);
  for (const std::string& e : errors) {
    EXPECT_FALSE(e.empty());
    ExpectNoSecretIn(e);
  }
  for (const std::string& line : host_.logs()) ExpectNoSecretIn(line);
}

TEST_F(WebhookTest, ConfigurationIsValidatedByCreateAndCheckConfigAlike) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"secret", "env:WEBHOOK_SECRET"}}, "webhook configuration.url is required"},
      {{{"url", "https://h.example/x"}}, "webhook configuration.secret is required"},
      {{{"url", "ftp://h.example/x"}, {"secret", "env:WEBHOOK_SECRET"}},
       "url must be an https:// URL"},
      {{{"url", "not a url"}, {"secret", "env:WEBHOOK_SECRET"}}, "url is not an absolute URL"},
      {{{"url", "https://u:p@h.example/x"}, {"secret", "env:WEBHOOK_SECRET"}},
       "url must not carry credentials"},
      {{{"url", "https://h.example/x"}, {"secret", "hunter2"}},
       "secret must be a secret reference"},
      {{{"url", "https://h.example/x"}, {"secret", "env:WEBHOOK_SECRET"}, {"timeout_ms", 0}},
       "timeout_ms must be between 1 and 120000"},
      {{{"url", "https://h.example/x"}, {"secret", "env:WEBHOOK_SECRET"}, {"colour", "red"}},
       "webhook configuration: unknown key 'colour'"},
      {{{"url", "https://h.example/x"}, {"secret", "env:WEBHOOK_SECRET"}, {"ca_file", "/nope.pem"}},
       "ca_file '/nope.pem' cannot be loaded"},
      {{{"url", "https://h.example/x"},
        {"secret", "env:WEBHOOK_SECRET"},
        {"allow_plaintext_http", "yes"}},
       "allow_plaintext_http must be true or false"},
  };
  for (const auto& [config, expected] : cases) {
    SCOPED_TRACE(expected);
    const auto created = plugin_->Create(config);
    EXPECT_EQ(created->status(), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(created->error().find(expected), std::string::npos) << created->error();
    const auto checked = plugin_->CheckConfig(config);
    EXPECT_EQ(checked.status, AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(checked.error, created->error());
    EXPECT_EQ(created->error().find("hunter2"), std::string::npos);
  }
  // A reference the host cannot resolve fails creation (checked at start-up)...
  Json unresolvable = {{"url", "https://h.example/x"}, {"secret", "env:MISSING"}};
  const auto created = plugin_->Create(unresolvable);
  EXPECT_EQ(created->status(), AIRLOCK_ERR_NOT_FOUND);
  EXPECT_NE(created->error().find("webhook configuration.secret"), std::string::npos)
      << created->error();
  // ...but check-config resolves nothing and starts nothing.
  const int before = host_.resolutions();
  EXPECT_EQ(plugin_->CheckConfig(unresolvable).status, AIRLOCK_OK);
  EXPECT_EQ(host_.resolutions(), before);
}

}  // namespace
}  // namespace airlock
