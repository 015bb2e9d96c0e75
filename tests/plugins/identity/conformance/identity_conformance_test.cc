// The identity conformance kit (airlock/testing/identity_conformance.hpp)
// run against every in-tree identity provider: static tokens, OIDC/JWT and
// mutual TLS, each loaded from its built shared object.
#include "airlock/testing/identity_conformance.hpp"

#include <openssl/evp.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "tests/plugins/identity/oidc_jwt/jwt_maker.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace {

using airlock::Result;
using airlock::conformance::IdentityRequest;
using airlock::conformance::IdentitySetup;
using nlohmann::json;

std::string Plugin(const std::string& name) {
  return std::string(AIRLOCK_PLUGIN_DIR) + "/" + name + ".so";
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  std::ostringstream hex;
  for (unsigned i = 0; i < length; ++i) {
    hex << "0123456789abcdef"[digest[i] >> 4] << "0123456789abcdef"[digest[i] & 15];
  }
  return hex.str();
}

IdentityRequest Bearer(const std::string& token) {
  IdentityRequest request;
  request.headers = {{"Authorization", "Bearer " + token}};
  return request;
}

const airlock::test::TempDir& Scratch() {
  static const airlock::test::TempDir dir("airlock-identity-conformance-");
  return dir;
}

class StaticTokensFixture : public airlock::conformance::IdentityFixture {
 public:
  Result<IdentitySetup> Prepare() override {
    const std::string alice = "alk_conformance_alice_7f3a9c", bot = "alk_conformance_bot_19e2";
    IdentitySetup setup;
    setup.plugin_path = Plugin("airlock_identity_static_tokens");
    setup.config_json =
        json{{"tokens",
              {{{"sha256", Sha256Hex(alice)}, {"subject", "alice"}, {"groups", {"analysts"}}},
               {{"sha256", Sha256Hex(bot)}, {"subject", "etl"}, {"kind", "service"}}}}}
            .dump();
    setup.accepted = {{"alice's token", Bearer(alice), "alice", {"analysts"}},
                      {"a service token", Bearer(bot), "etl", {}}};
    setup.refused = {{"an unknown token", Bearer("alk_conformance_mallory_00")},
                     {"alice's token cut short", Bearer(alice.substr(0, alice.size() - 1))},
                     {"alice's token with more", Bearer(alice + "x")}};
    setup.secrets = {alice, bot, "alk_conformance_mallory_00"};
    return setup;
  }
};

class OidcJwtFixture : public airlock::conformance::IdentityFixture {
 public:
  Result<IdentitySetup> Prepare() override {
    static const airlock::test::TestKey key = airlock::test::MakeRsaKey("conformance-key");
    static const airlock::test::TestKey stranger = airlock::test::MakeRsaKey("conformance-key");
    const std::string jwks = Scratch().File("jwks.json");
    std::ofstream(jwks) << json{{"keys", {key.PublicJwk("RS256")}}}.dump();
    const std::string issuer = "https://login.example.com", audience = "airlock";
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "conformance-key"}};
    const json claims = {{"iss", issuer},   {"aud", audience},  {"sub", "alice"},
                         {"iat", now - 10}, {"exp", now + 600}, {"groups", {"analysts"}}};
    const auto signed_with = [&](const json& changes, const airlock::test::TestKey& by) {
      json c = claims;
      c.update(changes);
      return airlock::test::SignJwt(by, header, c);
    };
    const std::string good = signed_with(json::object(), key);
    IdentitySetup setup;
    setup.plugin_path = Plugin("airlock_identity_oidc_jwt");
    setup.config_json = json{
        {"issuer", issuer},
        {"audience", audience},
        {"jwks_file", jwks},
        {"groups_claim",
         "groups"}}.dump();
    setup.accepted = {{"a valid ID token", Bearer(good), "alice", {"analysts"}}};
    setup.refused = {
        {"expired", Bearer(signed_with({{"exp", now - 3600}, {"iat", now - 7200}}, key))},
        {"for another audience", Bearer(signed_with({{"aud", "other-api"}}, key))},
        {"from another issuer", Bearer(signed_with({{"iss", "https://evil.example"}}, key))},
        {"signed by another key with the same kid", Bearer(signed_with(json::object(), stranger))},
        {"the payload changed after signing",
         Bearer(good.substr(0, good.find('.') + 1) +
                airlock::test::B64Url(json{{"sub", "root"}, {"iss", issuer}}.dump()) +
                good.substr(good.rfind('.')))}};
    setup.secrets = {good, good.substr(good.rfind('.') + 1)};
    return setup;
  }
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class MtlsFixture : public airlock::conformance::IdentityFixture {
 public:
  Result<IdentitySetup> Prepare() override {
    static const airlock::test::TestPki pki = airlock::test::GenerateTestPki(Scratch().path());
    const auto with_certificate = [](const std::string& pem_file) {
      IdentityRequest request;
      request.peer_certificate_pem = Slurp(pem_file);
      return request;
    };
    IdentitySetup setup;
    setup.plugin_path = Plugin("airlock_identity_mtls");
    setup.config_json = json{{"ca_file", pki.ca.cert_file}, {"groups", {"machines"}}}.dump();
    setup.accepted = {{"a client certificate of the CA",
                       with_certificate(pki.client.cert_file),
                       "test-client",
                       {"machines"}}};
    setup.refused = {
        {"an expired certificate", with_certificate(pki.expired_client.cert_file)},
        {"a certificate of another CA", with_certificate(pki.foreign_client.cert_file)}};
    setup.secrets = {Slurp(pki.client.key_file)};
    return setup;
  }
};

}  // namespace

AIRLOCK_IDENTITY_CONFORMANCE_SUITE(StaticTokens, StaticTokensFixture);
AIRLOCK_IDENTITY_CONFORMANCE_SUITE(OidcJwt, OidcJwtFixture);
AIRLOCK_IDENTITY_CONFORMANCE_SUITE(Mtls, MtlsFixture);
