// Loads the built e-mail notifier through the C ABI and sends through a real
// SMTP server on 127.0.0.1 (aiosmtpd, tests/support/smtp_sink.py) that
// requires STARTTLS, parses what it receives with Python's e-mail package and
// writes it down; checks recipients, headers, body, TLS and every refusal.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <openssl/sha.h>

#include "tests/plugins/notifiers/notifier_test_host.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock {
namespace {

using test::NotifierHost;
using test::NotifierPlugin;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_notifier_email.so";
constexpr char kSink[] = AIRLOCK_SOURCE_DIR "/tests/support/smtp_sink.py";
constexpr char kPassword[] = "smtp-pw-51c0ffee77";

// An SMTP server for one test; its received messages are files in `dir`.
class SmtpSink {
 public:
  SmtpSink(const std::string& dir, const test::TestPki* pki, const std::string& auth = "")
      : dir_(dir) {
    std::filesystem::create_directories(dir);
    std::vector<std::string> argv = {AIRLOCK_TEST_PYTHON, kSink, dir};
    if (pki != nullptr) {
      argv.insert(argv.end(), {"--cert", pki->server.cert_file, "--key", pki->server.key_file});
    }
    if (!auth.empty()) argv.insert(argv.end(), {"--auth", auth});
    process_ = std::make_unique<test::ChildProcess>(argv, std::chrono::seconds(30));
    port_ = static_cast<uint16_t>(std::stoi(process_->ready_line()));
  }
  uint16_t port() const { return port_; }

  // Every message received, in order.
  std::vector<Json> Messages() const {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
      return std::stoi(a.stem().string()) < std::stoi(b.stem().string());
    });
    std::vector<Json> out;
    for (const auto& file : files) {
      std::ifstream in(file);
      std::stringstream text;
      text << in.rdbuf();
      out.push_back(Json::parse(text.str()));
    }
    return out;
  }

 private:
  std::string dir_;
  std::unique_ptr<test::ChildProcess> process_;
  uint16_t port_ = 0;
};

// The values of header `name` in a received message (as Python parsed them).
std::vector<std::string> Headers(const Json& message, const std::string& name) {
  std::vector<std::string> out;
  for (const Json& header : message.at("headers")) {
    if (header.at(0) == name) out.push_back(header.at(1));
  }
  return out;
}

std::string HeaderOf(const Json& message, const std::string& name) {
  const auto values = Headers(message, name);
  EXPECT_EQ(values.size(), 1u) << name;
  return values.empty() ? "" : values[0];
}

// What the Message-ID must be: derived from the idempotency key.
std::string ExpectedMessageId(const std::string& id) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(id.data()), id.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < 16; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0F];
  }
  return "<airlock." + hex + "@example.com>";
}

class EmailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = std::make_unique<NotifierPlugin>(kPluginPath, host_.services());
    ASSERT_TRUE(plugin_->loaded());
    pki_ = test::GenerateTestPki(dir_.path());
  }

  Json Config(uint16_t port) const {
    return {{"smtp_url", "smtp://127.0.0.1:" + std::to_string(port)},
            {"ca_file", pki_.ca.cert_file},
            {"from", "Airlock <airlock@example.com>"},
            {"timeout_ms", 10000},
            {"addresses",
             {{"groups", {{"data-owners", {"bob@example.com", "carol@example.com"}}}},
              {"subjects", {{"alice", "alice@example.com"}, {"dave", "dave@example.com"}}}}}};
  }
  std::unique_ptr<NotifierPlugin::Instance> Create(const Json& config) {
    auto instance = plugin_->Create(config);
    EXPECT_TRUE(instance->ok()) << instance->error();
    return instance;
  }

  NotifierHost host_;
  std::unique_ptr<NotifierPlugin> plugin_;
  test::TempDir dir_{"airlock-email-"};
  test::TestPki pki_;
};

TEST_F(EmailTest, ManifestDeclaresANotifier) {
  EXPECT_EQ(plugin_->info().kind, AIRLOCK_KIND_NOTIFIER);
  EXPECT_EQ(std::string(plugin_->info().name), "email");
  ASSERT_NE(plugin_->info().config_schema, nullptr);
  EXPECT_TRUE(Json::parse(plugin_->info().config_schema).is_object());
  EXPECT_NE(plugin_->info().check_config, nullptr);
}

TEST_F(EmailTest, ApproversGetAWellFormedMessageOverStartTls) {
  SmtpSink sink(dir_.File("mail"), &pki_);
  auto instance = Create(Config(sink.port()));
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  ASSERT_EQ(out.status, AIRLOCK_OK) << out.error;

  const auto messages = sink.Messages();
  ASSERT_EQ(messages.size(), 1u);
  const Json& m = messages[0];
  EXPECT_TRUE(m.at("tls").get<bool>());
  EXPECT_EQ(m.at("mail_from"), "airlock@example.com");
  EXPECT_EQ(m.at("rcpt_tos"), Json({"bob@example.com", "carol@example.com"}));
  EXPECT_EQ(m.at("defects"), Json::array()) << m.at("data");
  EXPECT_EQ(m.at("content_type"), "text/plain");

  EXPECT_EQ(HeaderOf(m, "From"), "Airlock <airlock@example.com>");
  EXPECT_EQ(HeaderOf(m, "To"), "bob@example.com, carol@example.com");
  EXPECT_EQ(m.at("subject"),
            "[Airlock] Approval needed: alice asks for access to orders, customers");
  EXPECT_EQ(HeaderOf(m, "Date"), "Sun, 06 Dec 2026 06:30:00 +0000");  // occurred_at
  EXPECT_EQ(HeaderOf(m, "Message-ID"), ExpectedMessageId("r-7f3a/3/ops-webhook"));
  EXPECT_EQ(HeaderOf(m, "MIME-Version"), "1.0");
  EXPECT_EQ(HeaderOf(m, "Auto-Submitted"), "auto-generated");
  EXPECT_NE(HeaderOf(m, "Content-Type").find("charset=\"UTF-8\""), std::string::npos);

  const std::string body = m.at("body");
  for (const char* fact :
       {"alice asks for 1 hour of access to orders, customers for \"quarterly report\".",
        "Requester: alice (human, alice@example.com)", "Datasets: orders, customers",
        "Purpose: quarterly report", "Why approval is needed: orders needs an owner's approval",
        "Approvers: data-owners (1 approval needed)", "Window: 1 hour", "Request: r-7f3a",
        "Review in the console:", "https://airlock.example.com/console/#/requests/r-7f3a"}) {
    EXPECT_NE(body.find(fact), std::string::npos) << fact << " missing from:\n" << body;
  }
}

TEST_F(EmailTest, ARedeliveryIsTheSameMessage) {
  SmtpSink sink(dir_.File("mail"), &pki_);
  auto instance = Create(Config(sink.port()));
  Json doc = test::PendingApproval();
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  doc["attempt"] = 2;
  host_.set_now_unix(test::kOccurredAt + 3600);  // later, but the same event
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  doc["id"] = "r-7f3a/4/ops-webhook";
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  const auto messages = sink.Messages();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(HeaderOf(messages[0], "Message-ID"), HeaderOf(messages[1], "Message-ID"));
  EXPECT_EQ(messages[0].at("data"), messages[1].at("data"));
  EXPECT_NE(HeaderOf(messages[0], "Message-ID"), HeaderOf(messages[2], "Message-ID"));
}

TEST_F(EmailTest, RequesterGetsTheSentenceForTheEvent) {
  SmtpSink sink(dir_.File("mail"), &pki_);
  auto instance = Create(Config(sink.port()));
  Json doc = test::ToRequester("request.denied", "denied");
  doc["request"]["reason"] = "weekend access needs a ticket";
  doc["recipients"] = {{"subjects", {"alice"}}};
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  const auto messages = sink.Messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].at("rcpt_tos"), Json({"alice@example.com"}));
  EXPECT_EQ(messages[0].at("subject"),
            "[Airlock] Your request for orders, customers was denied: weekend access needs a "
            "ticket");
  EXPECT_NE(messages[0].at("body").get<std::string>().find(
                "Your request for orders, customers was denied: weekend access needs a ticket."),
            std::string::npos);
}

TEST_F(EmailTest, RecipientsAreMergedMappedAndDeduplicated) {
  SmtpSink sink(dir_.File("mail"), &pki_);
  auto instance = Create(Config(sink.port()));
  Json doc = test::PendingApproval();
  doc["recipients"] = {{"emails", {"alice@example.com", "erin@example.com"}},
                       {"subjects", {"ALICE-not-mapped", "alice", "dave"}},
                       {"groups", {"data-owners", "finance"}}};
  doc["recipients"]["emails"].push_back("ALICE@EXAMPLE.COM");
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  const auto messages = sink.Messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].at("rcpt_tos"),
            Json({"alice@example.com", "erin@example.com", "bob@example.com", "carol@example.com",
                  "dave@example.com"}));
  // Who could not be reached is logged (the message still went to the rest).
  bool logged = false;
  for (const std::string& line : host_.logs()) {
    logged = logged || (line.find("group finance has no address") != std::string::npos &&
                        line.find("subject ALICE-not-mapped has no address") != std::string::npos);
  }
  EXPECT_TRUE(logged);
}

TEST_F(EmailTest, NobodyToWriteToIsGivenUpNamingWhatHasNoAddress) {
  SmtpSink sink(dir_.File("mail"), &pki_);
  auto instance = Create(Config(sink.port()));
  Json doc = test::PendingApproval();
  doc["recipients"] = {
      {"groups", {"finance"}}, {"subjects", {"zed"}}, {"emails", {"not-an-address"}}};
  const auto out = plugin_->Deliver(instance->get(), doc);
  EXPECT_EQ(out.status, AIRLOCK_ERR_INVALID_ARGUMENT) << out.error;
  EXPECT_FALSE(test::IsRetried(out.status));
  EXPECT_NE(out.error.find("no e-mail address to send to"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("group finance has no address"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("subject zed has no address"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("'not-an-address' is not a valid address"), std::string::npos);
  doc["recipients"] = Json::object();
  EXPECT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(sink.Messages().empty());
}

TEST_F(EmailTest, APlaintextServerIsRefusedWhenStartTlsIsRequired) {
  SmtpSink sink(dir_.File("mail"), nullptr);  // no STARTTLS offered
  auto instance = Create(Config(sink.port()));
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_PERMISSION_DENIED) << out.error;
  EXPECT_NE(out.error.find("SMTP server 127.0.0.1 does not offer STARTTLS, which is required"),
            std::string::npos)
      << out.error;
  EXPECT_TRUE(sink.Messages().empty());

  // Towards this host, plaintext can be chosen explicitly.
  Json config = Config(sink.port());
  config["starttls"] = "none";
  auto plain = Create(config);
  ASSERT_EQ(plugin_->Deliver(plain->get(), test::PendingApproval()).status, AIRLOCK_OK);
  const auto messages = sink.Messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_FALSE(messages[0].at("tls").get<bool>());
}

TEST_F(EmailTest, AnUntrustedServerCertificateIsRefused) {
  SmtpSink sink(dir_.File("mail"), &pki_);
  Json config = Config(sink.port());
  config["ca_file"] = pki_.other_ca.cert_file;
  auto instance = Create(config);
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_PERMISSION_DENIED) << out.error;
  EXPECT_NE(out.error.find("TLS verification of SMTP server 127.0.0.1 failed"), std::string::npos)
      << out.error;
  EXPECT_TRUE(sink.Messages().empty());
}

TEST_F(EmailTest, UnreachableServerIsRetried) {
  auto instance = Create(Config(test::UnusedPort()));
  const auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_UNAVAILABLE) << out.error;
}

TEST_F(EmailTest, HeaderInjectionFromRequestTextIsDefused) {
  SmtpSink sink(dir_.File("mail"), &pki_);
  auto instance = Create(Config(sink.port()));
  Json doc = test::PendingApproval();
  doc["id"] = "r-1\r\nBcc: eve@evil.example";
  doc["event"] = "request.pending_approval\r\nX-Injected: 1";
  doc["request"]["requester"]["subject"] = "Zoë\r\nBcc: eve@evil.example\r\n\r\nbody";
  doc["request"]["datasets"] = {"orders\nSubject: fake"};
  ASSERT_EQ(plugin_->Deliver(instance->get(), doc).status, AIRLOCK_OK);
  const auto messages = sink.Messages();
  ASSERT_EQ(messages.size(), 1u);
  const Json& m = messages[0];
  EXPECT_EQ(m.at("defects"), Json::array()) << m.at("data");
  EXPECT_EQ(m.at("rcpt_tos"), Json({"bob@example.com", "carol@example.com"}));
  EXPECT_TRUE(Headers(m, "Bcc").empty());
  EXPECT_TRUE(Headers(m, "X-Injected").empty());
  EXPECT_EQ(Headers(m, "Subject").size(), 1u);
  // The text survives on one line, non-ASCII intact (RFC 2047 encoded); the
  // event is no event this plugin knows, so it is told as it came.
  EXPECT_EQ(m.at("subject"),
            "[Airlock] Zoë Bcc: eve@evil.example body's request for orders Subject: fake: "
            "request.pending_approval X-Injected: 1");
  EXPECT_EQ(HeaderOf(m, "X-Airlock-Event"), "request.pending_approvalX-Injected1");
  EXPECT_EQ(HeaderOf(m, "Message-ID"), ExpectedMessageId(doc["id"]));
  std::vector<std::string> names;
  for (const Json& header : m.at("headers")) names.push_back(header.at(0));
  EXPECT_EQ(names,
            (std::vector<std::string>{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
                                      "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted",
                                      "X-Airlock-Event"}));
}

TEST_F(EmailTest, CredentialsAreUsedAndNeverShown) {
  SmtpSink sink(dir_.File("mail"), &pki_, std::string("airlock:") + kPassword);
  host_.SetSecret("env:SMTP_PASSWORD", kPassword);
  Json config = Config(sink.port());
  config["username"] = "airlock";
  config["password"] = "env:SMTP_PASSWORD";
  auto instance = Create(config);
  ASSERT_EQ(plugin_->Deliver(instance->get(), test::PendingApproval()).status, AIRLOCK_OK);
  auto messages = sink.Messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].at("auth_login"), "airlock");

  std::vector<std::string> errors;
  host_.SetSecret("env:SMTP_PASSWORD", std::string(kPassword) + "-wrong");
  auto out = plugin_->Deliver(instance->get(), test::PendingApproval());
  EXPECT_EQ(out.status, AIRLOCK_ERR_PERMISSION_DENIED) << out.error;
  errors.push_back(out.error);
  // Without credentials the server refuses the sender: given up.
  config.erase("username");
  config.erase("password");
  auto anonymous = Create(config);
  out = plugin_->Deliver(anonymous->get(), test::PendingApproval());
  EXPECT_NE(out.status, AIRLOCK_OK);
  EXPECT_FALSE(test::IsRetried(out.status)) << out.error;
  EXPECT_EQ(sink.Messages().size(), 1u);
  // The password pasted into the configuration.
  config["username"] = "airlock";
  config["password"] = kPassword;
  errors.push_back(plugin_->Create(config)->error());
  errors.push_back(plugin_->CheckConfig(config).error);
  for (const std::string& e : errors) {
    EXPECT_FALSE(e.empty());
    EXPECT_EQ(e.find(kPassword), std::string::npos) << e;
  }
  for (const std::string& line : host_.logs()) {
    EXPECT_EQ(line.find(kPassword), std::string::npos) << line;
  }
}

TEST_F(EmailTest, ConfigurationIsValidatedByCreateAndCheckConfigAlike) {
  const Json base = {{"smtp_url", "smtp://mail.example.com:587"},
                     {"from", "Airlock <airlock@example.com>"}};
  const auto with = [&](const char* key, Json value) {
    Json c = base;
    c[key] = std::move(value);
    return c;
  };
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"from", "a@example.com"}}, "email configuration.smtp_url is required"},
      {with("smtp_url", "http://mail.example.com"), "smtp_url must be an smtp:// or smtps:// URL"},
      {with("smtp_url", "smtp://u:p@mail.example.com"), "smtp_url must not carry credentials"},
      {with("starttls", "none"),
       "starttls may be \"none\" only when the SMTP server is on this host"},
      {with("starttls", "optional"), "starttls must be \"required\" or \"none\""},
      {with("from", "Airlock <not an address>"), "email configuration.from must be an address"},
      {with("from", "x@example.com\r\nBcc: eve@evil.example"),
       "email configuration.from must be an address"},
      {with("password", "env:SMTP_PASSWORD"), "password needs a username"},
      {with("password", "hunter2"), "password must be a secret reference"},
      {with("addresses", {{"groups", {{"owners", {"bob"}}}}}),
       "addresses.groups.owners has an invalid e-mail address 'bob'"},
      {with("addresses", {{"subjects", {{"alice", 1}}}}),
       "addresses.subjects.alice must be a string"},
      {with("addresses", {{"teams", Json::object()}}), "addresses: unknown key 'teams'"},
      {with("ca_file", "/nope.pem"), "ca_file '/nope.pem' cannot be loaded"},
      {with("timeout_ms", -1), "timeout_ms must be between 1 and 120000"},
      {with("bcc", "x"), "email configuration: unknown key 'bcc'"},
  };
  for (const auto& [config, expected] : cases) {
    SCOPED_TRACE(expected);
    const auto created = plugin_->Create(config);
    EXPECT_EQ(created->status(), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(created->error().find(expected), std::string::npos) << created->error();
    EXPECT_EQ(plugin_->CheckConfig(config).error, created->error());
    EXPECT_EQ(created->error().find("hunter2"), std::string::npos);
  }
  // Loopback hosts may go without TLS.
  for (const char* url :
       {"smtp://127.0.0.1:25", "smtp://localhost:2525", "smtp://[::1]:25", "smtp://127.8.9.10"}) {
    SCOPED_TRACE(url);
    Json c = with("smtp_url", url);
    c["starttls"] = "none";
    EXPECT_EQ(plugin_->CheckConfig(c).status, AIRLOCK_OK) << plugin_->CheckConfig(c).error;
  }
  // check-config resolves nothing; create checks the password reference.
  Json c = with("username", "airlock");
  c["password"] = "env:UNSET";
  const int before = host_.resolutions();
  EXPECT_EQ(plugin_->CheckConfig(c).status, AIRLOCK_OK);
  EXPECT_EQ(host_.resolutions(), before);
  EXPECT_EQ(plugin_->Create(c)->status(), AIRLOCK_ERR_NOT_FOUND);
}

}  // namespace
}  // namespace airlock
