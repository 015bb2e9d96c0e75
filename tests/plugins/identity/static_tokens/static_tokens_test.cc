// Loads the built static-tokens plugin through the C ABI and authenticates
// requests with it.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/support/dl_plugin.h"

namespace airlock {
namespace {

using testing::DlInstance;
using testing::DlPlugin;
using testing::FakeHost;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_identity_static_tokens.so";
constexpr char kAliceToken[] = "al1ce-s3cret-t0ken-0123456789abcdef";
constexpr char kBotToken[] = "b0t-t0ken-fedcba9876543210";
constexpr char kOldToken[] = "0ld-t0ken-expired-00000000";
// 2026-01-01T00:00:00Z in microseconds.
constexpr int64_t k2026 = 1767225600LL * 1000000;

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

Json GoodConfig() {
  return {{"tokens",
           {{{"sha256", Sha256Hex(kAliceToken)},
             {"subject", "alice"},
             {"kind", "human"},
             {"groups", {"analysts", "emea"}},
             {"tenant", "t1"},
             {"expires_at", "2027-01-01T00:00:00Z"}},
            // Upper-case hex is accepted too.
            {{"sha256", Upper(Sha256Hex(kBotToken))}, {"subject", "etl-bot"}, {"kind", "agent"}},
            {{"sha256", Sha256Hex(kOldToken)},
             {"subject", "bob"},
             {"expires_at", "2025-06-30T23:59:59+02:00"}}}}};
}

struct AuthResult {
  airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
  std::string message;
  Json principal;
};

class StaticTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.set_now_micros(k2026);
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, host_.services(), &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_IDENTITY);
  }

  const airlock_type_identity_vtable& table() const {
    return plugin_->vtable<airlock_type_identity_vtable>();
  }

  // Status and message of create() with `config`.
  std::pair<airlock_type_status, std::string> TryCreate(const Json& config) {
    DlInstance<airlock_type_identity_vtable> instance(table(), config.dump());
    return {instance.status(), instance.error()};
  }

  AuthResult Authenticate(void* instance,
                          const std::vector<std::pair<std::string, std::string>>& headers) {
    std::vector<airlock_type_header> raw;
    for (const auto& [name, value] : headers) {
      raw.push_back({name.data(), name.size(), value.data(), value.size()});
    }
    const std::string method = "POST", target = "/v1/requests", remote = "127.0.0.1";
    airlock_type_http_request_view view{};
    view.size = sizeof(view);
    view.method = method.data();
    view.method_length = method.size();
    view.target = target.data();
    view.target_length = target.size();
    view.headers = raw.data();
    view.header_count = raw.size();
    view.remote_address = remote.data();
    view.remote_address_length = remote.size();
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    AuthResult result;
    result.status = table().authenticate(instance, &view, buffer.get(), error.get());
    result.message = error.message();
    if (result.status == AIRLOCK_OK) result.principal = Json::parse(buffer.view());
    seen_messages_.push_back(result.message);
    return result;
  }

  // No message or log line may carry a token or its hash.
  void ExpectNoSecretsLeaked() {
    std::vector<std::string> texts = seen_messages_;
    for (const auto& line : host_.logs()) texts.push_back(line);
    for (const auto& text : texts) {
      for (const char* token : {kAliceToken, kBotToken, kOldToken}) {
        EXPECT_EQ(text.find(token), std::string::npos) << text;
        EXPECT_EQ(text.find(Sha256Hex(token)), std::string::npos) << text;
        EXPECT_EQ(text.find(Upper(Sha256Hex(token))), std::string::npos) << text;
      }
    }
  }

  FakeHost host_;
  std::unique_ptr<DlPlugin> plugin_;
  std::vector<std::string> seen_messages_;
};

TEST_F(StaticTokensTest, ManifestDescribesThePlugin) {
  EXPECT_STREQ(plugin_->info().name, "static-tokens");
  EXPECT_EQ(plugin_->info().abi_major, static_cast<uint32_t>(AIRLOCK_ABI_MAJOR));
  ASSERT_NE(plugin_->info().config_schema, nullptr);
  EXPECT_TRUE(Json::accept(plugin_->info().config_schema));
  EXPECT_GE(table().size, static_cast<size_t>(AIRLOCK_IDENTITY_VTABLE_1_0_SIZE));
}

TEST_F(StaticTokensTest, ValidTokenYieldsTheConfiguredPrincipal) {
  DlInstance<airlock_type_identity_vtable> instance(table(), GoodConfig().dump());
  ASSERT_TRUE(instance.ok()) << instance.error();

  auto alice =
      Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kAliceToken}});
  ASSERT_EQ(alice.status, AIRLOCK_OK) << alice.message;
  EXPECT_EQ(alice.principal["subject"], "alice");
  EXPECT_EQ(alice.principal["kind"], "human");
  EXPECT_EQ(alice.principal["groups"], Json({"analysts", "emea"}));
  EXPECT_EQ(alice.principal["tenant"], "t1");

  auto bot = Authenticate(instance.get(),
                          {{"Host", "x"}, {"Authorization", std::string("Bearer ") + kBotToken}});
  ASSERT_EQ(bot.status, AIRLOCK_OK) << bot.message;
  EXPECT_EQ(bot.principal["subject"], "etl-bot");
  EXPECT_EQ(bot.principal["kind"], "agent");
  EXPECT_EQ(bot.principal["groups"], Json::array());
  EXPECT_FALSE(bot.principal.contains("tenant"));

  auto parsed = Principal::FromJson(alice.principal);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  ExpectNoSecretsLeaked();
}

TEST_F(StaticTokensTest, AnUnnamedKindIsLeftToTheKernel) {
  Json config = {{"tokens", {{{"sha256", Sha256Hex(kBotToken)}, {"subject", "svc"}}}}};
  DlInstance<airlock_type_identity_vtable> instance(table(), config.dump());
  ASSERT_TRUE(instance.ok()) << instance.error();
  auto r = Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kBotToken}});
  ASSERT_EQ(r.status, AIRLOCK_OK);
  EXPECT_FALSE(r.principal.contains("kind")) << r.principal.dump();
  auto parsed = Principal::FromJson(r.principal);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->kind_unsaid);
}

TEST_F(StaticTokensTest, SchemeAndHeaderNameAreCaseInsensitive) {
  DlInstance<airlock_type_identity_vtable> instance(table(), GoodConfig().dump());
  ASSERT_TRUE(instance.ok());
  auto lower =
      Authenticate(instance.get(), {{"authorization", std::string("bearer ") + kAliceToken}});
  EXPECT_EQ(lower.status, AIRLOCK_OK) << lower.message;
  auto upper = Authenticate(instance.get(),
                            {{"AUTHORIZATION", std::string("BEARER  ") + kAliceToken + " "}});
  EXPECT_EQ(upper.status, AIRLOCK_OK) << upper.message;
}

TEST_F(StaticTokensTest, UnknownTokenIsNotApplicable) {
  DlInstance<airlock_type_identity_vtable> instance(table(), GoodConfig().dump());
  ASSERT_TRUE(instance.ok());
  auto r = Authenticate(instance.get(), {{"Authorization", "Bearer not-a-known-token"}});
  EXPECT_EQ(r.status, AIRLOCK_ERR_NOT_APPLICABLE);
  // A prefix or extension of a real token is just as unknown.
  auto prefix = Authenticate(
      instance.get(), {{"Authorization", std::string("Bearer ") + std::string(kAliceToken, 10)}});
  EXPECT_EQ(prefix.status, AIRLOCK_ERR_NOT_APPLICABLE);
  auto longer =
      Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kAliceToken + "x"}});
  EXPECT_EQ(longer.status, AIRLOCK_ERR_NOT_APPLICABLE);
  ExpectNoSecretsLeaked();
}

TEST_F(StaticTokensTest, MissingHeaderOrOtherSchemeIsNotApplicable) {
  DlInstance<airlock_type_identity_vtable> instance(table(), GoodConfig().dump());
  ASSERT_TRUE(instance.ok());
  EXPECT_EQ(Authenticate(instance.get(), {}).status, AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(Authenticate(instance.get(), {{"Cookie", kAliceToken}}).status,
            AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(Authenticate(instance.get(), {{"Authorization", "Basic YWxpY2U6cHc="}}).status,
            AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(Authenticate(instance.get(), {{"Authorization", "Bearer"}}).status,
            AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(Authenticate(instance.get(), {{"Authorization", "Bearer   "}}).status,
            AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(
      Authenticate(instance.get(), {{"Authorization", std::string("Bearer") + kAliceToken}}).status,
      AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(Authenticate(instance.get(),
                         {{"Authorization", std::string("Bearer ") + std::string(70000, 'a')}})
                .status,
            AIRLOCK_ERR_NOT_APPLICABLE);
}

TEST_F(StaticTokensTest, ExpiredTokenIsUnauthenticated) {
  DlInstance<airlock_type_identity_vtable> instance(table(), GoodConfig().dump());
  ASSERT_TRUE(instance.ok());
  auto old = Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kOldToken}});
  EXPECT_EQ(old.status, AIRLOCK_ERR_UNAUTHENTICATED);
  EXPECT_EQ(old.message, "token expired");

  // The host's clock decides: alice's token lives until 2027-01-01T00:00:00Z.
  host_.set_now_micros(1798761600LL * 1000000 - 1);
  EXPECT_EQ(Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kAliceToken}})
                .status,
            AIRLOCK_OK);
  host_.set_now_micros(1798761600LL * 1000000);
  auto expired =
      Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kAliceToken}});
  EXPECT_EQ(expired.status, AIRLOCK_ERR_UNAUTHENTICATED);
  // Bob's "+02:00" offset is honoured: 2025-06-30T21:59:59Z.
  host_.set_now_micros(1751320799LL * 1000000 - 1);
  EXPECT_EQ(
      Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kOldToken}}).status,
      AIRLOCK_OK);
  ExpectNoSecretsLeaked();
}

TEST_F(StaticTokensTest, EmptyTokenListNeverApplies) {
  DlInstance<airlock_type_identity_vtable> instance(table(), R"({"tokens": []})");
  ASSERT_TRUE(instance.ok()) << instance.error();
  EXPECT_EQ(Authenticate(instance.get(), {{"Authorization", std::string("Bearer ") + kAliceToken}})
                .status,
            AIRLOCK_ERR_NOT_APPLICABLE);
}

TEST_F(StaticTokensTest, ConfigErrorsNameTheKey) {
  struct Case {
    const char* name;
    Json entry;
    std::string expected;
  };
  const std::string hash = Sha256Hex(kAliceToken);
  const std::vector<Case> cases = {
      {"bad hex",
       {{"sha256", hash.substr(0, 63) + "g"}, {"subject", "a"}},
       "tokens[1].sha256 must be 64 hexadecimal characters"},
      {"short hex",
       {{"sha256", hash.substr(0, 62)}, {"subject", "a"}},
       "tokens[1].sha256 must be 64 hexadecimal characters"},
      {"missing hash", {{"subject", "a"}}, "tokens[1].sha256 is required"},
      {"missing subject", {{"sha256", Sha256Hex("other")}}, "tokens[1].subject is required"},
      {"empty subject",
       {{"sha256", Sha256Hex("other")}, {"subject", ""}},
       "tokens[1].subject must not be empty"},
      {"raw token",
       {{"token", kAliceToken}, {"subject", "a"}},
       "tokens[1]: raw tokens are not accepted; configure sha256"},
      {"bad kind",
       {{"sha256", Sha256Hex("other")}, {"subject", "a"}, {"kind", "robot"}},
       "tokens[1].kind must be human, service or agent"},
      {"bad date",
       {{"sha256", Sha256Hex("other")}, {"subject", "a"}, {"expires_at", "2027-13-01T00:00:00Z"}},
       "tokens[1].expires_at must be an RFC 3339 timestamp"},
      {"date without offset",
       {{"sha256", Sha256Hex("other")}, {"subject", "a"}, {"expires_at", "2027-01-01T00:00:00"}},
       "tokens[1].expires_at must be an RFC 3339 timestamp"},
      {"groups not strings",
       {{"sha256", Sha256Hex("other")}, {"subject", "a"}, {"groups", {1}}},
       "tokens[1].groups must be an array of strings"},
      {"unknown key",
       {{"sha256", Sha256Hex("other")}, {"subject", "a"}, {"role", "admin"}},
       "tokens[1]: unknown key 'role'"},
      {"duplicate hash",
       {{"sha256", Upper(hash)}, {"subject", "b"}},
       "tokens[1].sha256 duplicates tokens[0].sha256"},
      {"not an object", "alice", "tokens[1] must be an object"},
  };
  for (const auto& c : cases) {
    Json config = {{"tokens", {{{"sha256", hash}, {"subject", "alice"}}, c.entry}}};
    auto [status, message] = TryCreate(config);
    EXPECT_EQ(status, AIRLOCK_ERR_INVALID_ARGUMENT) << c.name;
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.name << ": " << message;
    seen_messages_.push_back(message);
  }

  auto [s1, m1] = TryCreate(Json::object());
  EXPECT_EQ(s1, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(m1.find("tokens is required"), std::string::npos) << m1;
  auto [s2, m2] = TryCreate({{"tokens", Json::array()}, {"token", "x"}});
  EXPECT_EQ(s2, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(m2.find("unknown key 'token'"), std::string::npos) << m2;
  auto [s3, m3] = TryCreate({{"tokens", "abc"}});
  EXPECT_NE(m3.find("tokens must be an array"), std::string::npos) << m3;

  abi::ErrorHolder err;
  void* instance = nullptr;
  const std::string not_json = "{tokens";
  EXPECT_EQ(table().create(not_json.data(), not_json.size(), &instance, err.get()),
            AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(instance, nullptr);
  ExpectNoSecretsLeaked();
}

}  // namespace
}  // namespace airlock
