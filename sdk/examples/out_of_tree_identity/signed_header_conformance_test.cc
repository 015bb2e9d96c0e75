// Runs the SDK's identity conformance kit against the signed-header provider:
// tokens minted here with the configured key are accepted as their subject;
// tokens signed with another key, expired, altered after signing, for another
// audience or living too long are refused, and neither the key nor a token
// shows in an error or a log line.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <string>

#include <airlock/cpp/base64url.hpp>
#include <airlock/testing/identity_conformance.hpp>

namespace {

namespace conformance = airlock::conformance;
using Json = nlohmann::json;

const std::string kKey = "conformance-key-0123456789abcdef-0123456789";
const std::string kOtherKey = "another-key-that-is-not-configured-0123456";
const std::string kAudience = "airlock-conformance";

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Sign(const std::string& key, const std::string& payload) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &length);
  return airlock::sdk::Base64UrlEncode(std::string(reinterpret_cast<const char*>(mac), length));
}

// A token as the trusted component mints it.
std::string Mint(const Json& claims, const std::string& key = kKey) {
  const std::string payload = airlock::sdk::Base64UrlEncode(claims.dump());
  return payload + "." + Sign(key, payload);
}

conformance::IdentityRequest WithToken(const std::string& token,
                                       const std::string& header = "X-Airlock-Signed") {
  conformance::IdentityRequest request;
  request.headers = {{header, token}};
  return request;
}

class SignedHeaderFixture : public conformance::IdentityFixture {
 public:
  airlock::Result<conformance::IdentitySetup> Prepare() override {
    const int64_t now = Now();
    const Json alice = {
        {"sub", "alice"}, {"aud", kAudience}, {"exp", now + 600}, {"groups", {"analysts", "emea"}}};
    const Json etl = {{"sub", "etl"}, {"aud", kAudience}, {"exp", now + 60}, {"kind", "service"}};
    const std::string alice_token = Mint(alice);
    const std::string etl_token = Mint(etl);

    // Alice's payload with another subject, under her signature.
    Json mallory = alice;
    mallory["sub"] = "mallory";
    const std::string forged = airlock::sdk::Base64UrlEncode(mallory.dump()) + "." +
                               alice_token.substr(alice_token.find('.') + 1);
    Json expired = alice;
    expired["exp"] = now - 3600;
    Json elsewhere = alice;
    elsewhere["aud"] = "another-deployment";
    Json forever = alice;
    forever["exp"] = now + 30 * 86400;

    conformance::IdentitySetup setup;
    setup.plugin_path = SIGNED_HEADER_PLUGIN_PATH;
    setup.config_json = Json{
        {"key_secret", "env:SIGNED_HEADER_CONFORMANCE_KEY"},
        {"audience", kAudience},
        {"max_lifetime_seconds",
         3600}}.dump();
    setup.secret_references = {{"env:SIGNED_HEADER_CONFORMANCE_KEY", kKey}};
    setup.accepted = {{"alice's token", WithToken(alice_token), "alice", {"analysts", "emea"}},
                      {"a service's token, header name in lower case",
                       WithToken(etl_token, "x-airlock-signed"),
                       "etl",
                       {}}};
    setup.refused = {
        {"signed with another key", WithToken(Mint(alice, kOtherKey))},
        {"expired", WithToken(Mint(expired))},
        {"altered after signing", WithToken(forged)},
        {"for another audience", WithToken(Mint(elsewhere))},
        {"living longer than max_lifetime_seconds", WithToken(Mint(forever))},
        {"without its signature", WithToken(alice_token.substr(0, alice_token.find('.')))},
        {"sent twice", [&] {
           auto twice = WithToken(alice_token);
           twice.headers.push_back({"X-Airlock-Signed", alice_token});
           return twice;
         }()}};
    setup.secrets = {kKey, kOtherKey, alice_token, etl_token, forged};
    return setup;
  }
};

}  // namespace

AIRLOCK_IDENTITY_CONFORMANCE_SUITE(SignedHeader, SignedHeaderFixture);

// Beyond the kit: a key too short to be a key and a secret that cannot be
// resolved are refused by create() and by check_config alike, naming the key.
TEST(SignedHeaderConfiguration, AShortOrMissingKeyIsRefused) {
  auto info = conformance::EnterPluginFile(SIGNED_HEADER_PLUGIN_PATH);
  ASSERT_TRUE(info.ok()) << info.status().message();
  ASSERT_TRUE(conformance::CheckManifest(**info, AIRLOCK_KIND_IDENTITY, "identity").ok());
  const auto* table = static_cast<const airlock_type_identity_vtable*>((*info)->vtable);
  ASSERT_NE((*info)->check_config, nullptr);
  conformance::KitHost::Get().Configure({{"env:SIGNED_HEADER_SHORT_KEY", "too-short"}});
  for (const std::string reference :
       {"env:SIGNED_HEADER_SHORT_KEY", "env:SIGNED_HEADER_KEY_NOBODY_SET"}) {
    SCOPED_TRACE(reference);
    const std::string config = Json{{"key_secret", reference}, {"audience", kAudience}}.dump();
    void* instance = nullptr;
    airlock::abi::ErrorHolder error;
    EXPECT_NE(table->create(config.data(), config.size(), &instance, error.get()), AIRLOCK_OK);
    EXPECT_EQ(instance, nullptr);
    EXPECT_NE(error.message().find("key_secret"), std::string::npos) << error.message();
    EXPECT_EQ(error.message().find("too-short"), std::string::npos) << error.message();
    airlock::abi::ErrorHolder checked;
    EXPECT_NE((*info)->check_config(config.data(), config.size(), checked.get()), AIRLOCK_OK);
  }
  const std::string inline_key = Json{{"key_secret", kKey}, {"audience", kAudience}}.dump();
  void* instance = nullptr;
  airlock::abi::ErrorHolder error;
  EXPECT_EQ(table->create(inline_key.data(), inline_key.size(), &instance, error.get()),
            AIRLOCK_ERR_INVALID_ARGUMENT)
      << "a key written into the configuration must be refused";
  EXPECT_EQ(error.message().find(kKey), std::string::npos) << error.message();
}
