// Loads the built Slack notifier through the C ABI and posts to a real
// HTTP(S) stand-in for Slack's incoming webhooks on 127.0.0.1, checking what
// the message says to approvers and to requesters, that request text cannot
// inject mrkdwn, and that the webhook URL (a secret) stays secret.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/plugins/notifiers/notifier_test_host.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_http_server.h"
#include "tests/support/test_pki.h"

namespace airlock {
namespace {

using test::NotifierHost;
using test::NotifierPlugin;
using test::ReceivedRequest;
using test::ScriptedReply;
using test::TestHttpServer;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_notifier_slack.so";
constexpr char kSecretPath[] = "/services/T0AIRLOCK/B0NOTIFY/hX3kq9ZsecretZpath";
constexpr char kConsole[] = "https://airlock.example.com/console/#/requests/r-7f3a";

TestHttpServer::Handler SlackOk() {
  return [](const ReceivedRequest&) {
    ScriptedReply reply{200, "ok"};
    reply.content_type = "text/plain";
    return reply;
  };
}

// Every mrkdwn and plain text of a message, and its parts.
struct Posted {
  Json message;
  std::string text;                 // the fallback
  std::vector<std::string> mrkdwn;  // section texts
  std::string header;
  std::string button_text;
  std::string button_url;

  std::string All() const {
    std::string all = text + "\n" + header;
    for (const auto& m : mrkdwn) all += "\n" + m;
    return all;
  }
};

Posted Parse(const std::string& body) {
  Posted p;
  p.message = Json::parse(body);
  p.text = p.message.at("text").get<std::string>();
  for (const Json& block : p.message.at("blocks")) {
    const std::string type = block.at("type");
    if (type == "header") p.header = block.at("text").at("text");
    if (type == "section") {
      EXPECT_EQ(block.at("text").at("type"), "mrkdwn");
      p.mrkdwn.push_back(block.at("text").at("text"));
    }
    if (type == "actions") {
      const Json& button = block.at("elements").at(0);
      EXPECT_EQ(button.at("type"), "button");
      p.button_text = button.at("text").at("text");
      p.button_url = button.at("url");
    }
  }
  return p;
}

class SlackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = std::make_unique<NotifierPlugin>(kPluginPath, host_.services());
    ASSERT_TRUE(plugin_->loaded());
  }

  // A plain-http stand-in, with the URL stored as the secret.
  std::unique_ptr<NotifierPlugin::Instance> CreateFor(const TestHttpServer& server) {
    host_.SetSecret("env:SLACK_URL", server.url(kSecretPath));
    auto instance = plugin_->Create(
        {{"webhook_url", "env:SLACK_URL"}, {"allow_plaintext_http", true}, {"timeout_ms", 5000}});
    EXPECT_TRUE(instance->ok()) << instance->error();
    return instance;
  }

  // Delivers `doc` and returns what Slack received.
  Posted DeliverAndRead(const Json& doc) {
    TestHttpServer server(SlackOk());
    auto instance = CreateFor(server);
    const auto out = plugin_->Deliver(instance->get(), doc);
    EXPECT_EQ(out.status, AIRLOCK_OK) << out.error;
    const auto seen = server.requests();
    if (seen.size() != 1u) {
      ADD_FAILURE() << "expected one post, got " << seen.size();
      return {};
    }
    EXPECT_EQ(seen[0].method, "POST");
    EXPECT_EQ(seen[0].target, kSecretPath);
    EXPECT_EQ(seen[0].Header("Content-Type"), "application/json");
    return Parse(seen[0].body);
  }

  NotifierHost host_;
  std::unique_ptr<NotifierPlugin> plugin_;
};

TEST_F(SlackTest, ManifestDeclaresANotifier) {
  EXPECT_EQ(plugin_->info().kind, AIRLOCK_KIND_NOTIFIER);
  EXPECT_EQ(std::string(plugin_->info().name), "slack");
  ASSERT_NE(plugin_->info().config_schema, nullptr);
  EXPECT_TRUE(Json::parse(plugin_->info().config_schema).is_object());
  EXPECT_NE(plugin_->info().check_config, nullptr);
}

TEST_F(SlackTest, ApproversAreToldWhoAsksForWhatWhyAndWhereToReview) {
  const Posted p = DeliverAndRead(test::PendingApproval());
  const std::string all = p.All();
  for (const char* fact : {"alice", "human", "alice@example.com", "orders, customers",
                           "quarterly report", "orders needs an owner's approval", "data-owners",
                           "1 approval needed", "1 hour", "r-7f3a"}) {
    EXPECT_NE(all.find(fact), std::string::npos) << fact << " missing from:\n" << all;
  }
  // The sentence itself, and the link both as a button and in the fallback.
  EXPECT_NE(p.text.find("alice asks for 1 hour of access to orders, customers for \"quarterly "
                        "report\""),
            std::string::npos)
      << p.text;
  EXPECT_EQ(p.header, "Approval needed: alice asks for access to orders, customers");
  EXPECT_EQ(p.button_text, "Review in the console");
  EXPECT_EQ(p.button_url, kConsole);
  EXPECT_NE(p.text.find(std::string("<") + kConsole + "|Review in the console>"), std::string::npos)
      << p.text;
  // Labelled facts, one per line.
  ASSERT_EQ(p.mrkdwn.size(), 2u);
  EXPECT_NE(p.mrkdwn[1].find("*Purpose:* quarterly report"), std::string::npos) << p.mrkdwn[1];
  EXPECT_NE(p.mrkdwn[1].find("*Approvers:* data-owners (1 approval needed)"), std::string::npos)
      << p.mrkdwn[1];
  EXPECT_NE(p.mrkdwn[1].find("*Why approval is needed:* orders needs an owner's approval"),
            std::string::npos)
      << p.mrkdwn[1];
}

TEST_F(SlackTest, RequestersGetOneClearSentencePerEvent) {
  // 2026-12-06T07:20:00Z: ten minutes before not_after.
  host_.set_now_unix(test::kOccurredAt + 50 * 60);
  struct Case {
    const char* event;
    const char* state;
    const char* reason;  // request.reason, or null to drop it
    const char* sentence;
  };
  const std::vector<Case> cases = {
      {"request.approved", "approved", nullptr,
       "Your request for orders, customers was approved; the data is being prepared."},
      {"request.denied", "denied", "weekend access needs a ticket",
       "Your request for orders, customers was denied: weekend access needs a ticket."},
      {"request.ready", "ready", nullptr,
       "Your access to orders, customers is ready until 2026-12-06 07:30 UTC."},
      {"request.expiring", "ready", nullptr,
       "Your access to orders, customers ends in 10 minutes (at 2026-12-06 07:30 UTC)."},
      {"request.expired", "expired", nullptr,
       "Your access to orders, customers has ended: its window expired."},
      {"request.revoked", "revoked", "revoked by bob",
       "Your access to orders, customers was revoked: revoked by bob."},
      {"request.closed", "closed", nullptr, "Your request for orders, customers was closed."},
      {"request.failed", "failed", "the source database is unreachable",
       "Your request for orders, customers failed: the source database is unreachable."},
      {"request.pending_approval", "pending_approval", nullptr,
       "Your request for orders, customers waits for approval by data-owners."},
      {"request.something_new", "ready", nullptr,
       "Your request for orders, customers: request.something_new."},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.event);
    Json doc = test::ToRequester(c.event, c.state);
    if (c.reason == nullptr) {
      doc["request"].erase("reason");
    } else {
      doc["request"]["reason"] = c.reason;
    }
    const Posted p = DeliverAndRead(doc);
    ASSERT_FALSE(p.mrkdwn.empty());
    EXPECT_EQ(p.mrkdwn[0], c.sentence);
    EXPECT_EQ(p.text.rfind(c.sentence, 0), 0u) << p.text;
    EXPECT_EQ(p.button_url, kConsole);
    EXPECT_EQ(p.button_text, "Open in the console");
  }
}

TEST_F(SlackTest, AScheduledApprovalSaysWhenAccessStarts) {
  Json doc = test::ToRequester("request.approved", "approved");
  doc["request"].erase("reason");
  doc["request"]["not_before"] = "2026-12-07T09:00:00Z";
  const Posted p = DeliverAndRead(doc);
  ASSERT_FALSE(p.mrkdwn.empty());
  EXPECT_EQ(p.mrkdwn[0],
            "Your request for orders, customers was approved; access starts at 2026-12-07 09:00 "
            "UTC.");
  EXPECT_NE(p.All().find("Access starts"), std::string::npos) << p.All();
}

TEST_F(SlackTest, ExpiringCountsMinutesFromNotAfter) {
  Json doc = test::ToRequester("request.expiring", "ready");
  host_.set_now_unix(test::kOccurredAt + 60 * 60 - 59);  // 59 s left: rounds up
  EXPECT_NE(DeliverAndRead(doc).mrkdwn.at(0).find("ends in 1 minute ("), std::string::npos);
  host_.set_now_unix(test::kOccurredAt + 60 * 60 - 90 * 60);  // 1 h 30 min left
  EXPECT_NE(DeliverAndRead(doc).mrkdwn.at(0).find("ends in 1 hour 30 minutes"), std::string::npos);
}

TEST_F(SlackTest, RequestTextCannotInjectMrkdwn) {
  Json doc = test::PendingApproval();
  doc["request"]["purpose"] = "<!channel> & <https://evil.example|click here>";
  doc["request"]["requester"]["subject"] = "mallory<@U123>";
  doc["request"]["reason"] = "line one\r\nline two";
  const Posted p = DeliverAndRead(doc);
  EXPECT_NE(p.text.find("&lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;"),
            std::string::npos)
      << p.text;
  for (const std::string& m : p.mrkdwn) {
    SCOPED_TRACE(m);
    EXPECT_EQ(m.find("<!channel>"), std::string::npos);
    EXPECT_EQ(m.find("<@U123>"), std::string::npos);
    EXPECT_EQ(m.find("<https://evil"), std::string::npos);
    EXPECT_EQ(m.find(" & "), std::string::npos);
  }
  EXPECT_NE(p.All().find("mallory&lt;@U123&gt;"), std::string::npos);
  // New lines in request text do not make new lines (nor new facts) in the message.
  EXPECT_NE(p.mrkdwn.at(1).find("line one line two"), std::string::npos) << p.mrkdwn.at(1);
  // The only link is the console's; the text fallback has exactly one "<".
  EXPECT_EQ(std::count(p.text.begin(), p.text.end(), '<'), 1) << p.text;
}

TEST_F(SlackTest, AMinimalDocumentStillMakesAMessage) {
  const Posted p = DeliverAndRead({{"id", "n-1"}, {"event", "request.closed"}});
  EXPECT_EQ(p.text, "A request for data was closed.");
  EXPECT_TRUE(p.button_url.empty());
}

TEST_F(SlackTest, RateLimitIsRetriedAndOtherRefusalsAreNot) {
  TestHttpServer server([](const ReceivedRequest&) {
    ScriptedReply reply{429, "rate_limited"};
    reply.headers = {{"Retry-After", "7"}};
    return reply;
  });
  auto instance = CreateFor(server);
  auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_RESOURCE_EXHAUSTED) << out.error;
  EXPECT_NE(out.error.find("Slack webhook answered HTTP 429 (rate_limited); retry after 7 s"),
            std::string::npos)
      << out.error;

  server.SetHandler([](const ReceivedRequest&) { return ScriptedReply{404, "no_service"}; });
  out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_INVALID_ARGUMENT) << out.error;
  EXPECT_NE(out.error.find("no_service"), std::string::npos);

  server.SetHandler([](const ReceivedRequest&) { return ScriptedReply{503, "down"}; });
  EXPECT_EQ(plugin_->Deliver(instance->get(), test::PendingApproval()).status,
            AIRLOCK_ERR_UNAVAILABLE);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST_F(SlackTest, HttpsWithTheConfiguredCa) {
  test::TempDir dir("airlock-slack-");
  const test::TestPki pki = test::GenerateTestPki(dir.path());
  TestHttpServer server(SlackOk(), pki.server.cert_file, pki.server.key_file);
  host_.SetSecret("env:SLACK_URL", server.url(kSecretPath));
  // Relative ca_file: against the configuration directory.
  auto instance = plugin_->Create(
      {{"webhook_url", "env:SLACK_URL"}, {"ca_file", "ca.crt"}, {"$config_dir", dir.path()}});
  ASSERT_TRUE(instance->ok()) << instance->error();
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_OK) << out.error;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(SlackTest, TheWebhookUrlNeverAppearsInErrorsOrLogs) {
  std::vector<std::string> errors;
  {
    TestHttpServer server([](const ReceivedRequest&) { return ScriptedReply{410, "gone"}; });
    auto instance = CreateFor(server);
    errors.push_back(plugin_->Deliver(instance->get(), test::PendingApproval()).error);
  }
  {
    host_.SetSecret("env:SLACK_URL",
                    "http://127.0.0.1:" + std::to_string(test::UnusedPort()) + kSecretPath);
    auto instance =
        plugin_->Create({{"webhook_url", "env:SLACK_URL"}, {"allow_plaintext_http", true}});
    ASSERT_TRUE(instance->ok()) << instance->error();
    const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
    EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE) << out.error;
    errors.push_back(out.error);
  }
  // Resolves to plain http without the flag: refused, without quoting it.
  host_.SetSecret("env:SLACK_URL", std::string("http://hooks.example.com") + kSecretPath);
  const auto plain = plugin_->Create({{"webhook_url", "env:SLACK_URL"}});
  EXPECT_EQ(plain->status(), AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(plain->error().find("webhook_url resolves to a value that is a plain http:// URL"),
            std::string::npos)
      << plain->error();
  errors.push_back(plain->error());
  // Resolves to something that is not a URL.
  host_.SetSecret("env:SLACK_URL", std::string("hooks.example.com ") + kSecretPath);
  errors.push_back(plugin_->Create({{"webhook_url", "env:SLACK_URL"}})->error());
  // The URL pasted into the configuration instead of a reference.
  const Json pasted = {{"webhook_url", std::string("https://hooks.example.com") + kSecretPath}};
  const auto refused = plugin_->Create(pasted);
  EXPECT_EQ(refused->status(), AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(refused->error().find("webhook_url must be a secret reference"), std::string::npos);
  errors.push_back(refused->error());
  errors.push_back(plugin_->CheckConfig(pasted).error);

  const std::string secret_part = "hX3kq9ZsecretZpath";
  for (const std::string& e : errors) {
    EXPECT_FALSE(e.empty());
    EXPECT_EQ(e.find(secret_part), std::string::npos) << e;
  }
  for (const std::string& line : host_.logs()) {
    EXPECT_EQ(line.find(secret_part), std::string::npos) << line;
  }
}

TEST_F(SlackTest, ConfigurationIsValidatedByCreateAndCheckConfigAlike) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {Json::object(), "slack configuration.webhook_url is required"},
      {{{"webhook_url", "env:SLACK_URL"}, {"channel", "#ops"}},
       "slack configuration: unknown key 'channel'"},
      {{{"webhook_url", "env:SLACK_URL"}, {"timeout_ms", 999999}},
       "timeout_ms must be between 1 and 120000"},
      {{{"webhook_url", "env:SLACK_URL"}, {"ca_file", "/nope.pem"}},
       "ca_file '/nope.pem' cannot be loaded"},
  };
  for (const auto& [config, expected] : cases) {
    SCOPED_TRACE(expected);
    const auto created = plugin_->Create(config);
    EXPECT_EQ(created->status(), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(created->error().find(expected), std::string::npos) << created->error();
    const auto checked = plugin_->CheckConfig(config);
    EXPECT_EQ(checked.error, created->error());
  }
  const int before = host_.resolutions();
  EXPECT_EQ(plugin_->CheckConfig({{"webhook_url", "env:UNSET"}}).status, AIRLOCK_OK);
  EXPECT_EQ(host_.resolutions(), before);
  EXPECT_EQ(plugin_->Create({{"webhook_url", "env:UNSET"}})->status(), AIRLOCK_ERR_NOT_FOUND);
}

}  // namespace
}  // namespace airlock
