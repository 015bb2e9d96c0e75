// End-to-end identity: a real airlockd over TLS that asks for client
// certificates (server.tls.client_ca_file), with three identity providers
// chained in order (mtls, oidc-jwt with a JWKS file, static-tokens). Each
// credential authenticates, a refused JWT gets its reason in the 401, and
// the principal's kind reaches the policy decision, the request record and
// the audit trail.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/plugins/identity/oidc_jwt/jwt_maker.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr char kStaticToken[] = "alk_e2e_identity_static_token_0123456789";
constexpr char kIssuer[] = "https://idp.example.test/realms/airlock";
constexpr char kAudience[] = "airlock-api";

std::string Plugin(const std::string& name) {
  return std::string(AIRLOCK_PLUGIN_DIR) + "/" + name + ".so";
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One allow rule per principal kind, each needing approval (so no enclave
// starts): the rule named in the decision shows which kind the policy saw.
json Policy() {
  json rules = json::array();
  for (const char* kind : {"human", "service", "agent"}) {
    rules.push_back({{"name", std::string("kind-") + kind},
                     {"effect", "allow"},
                     {"subjects", {{"groups", {"analysts"}}, {"kinds", {kind}}}},
                     {"datasets", {"customers"}},
                     {"approval", {{"groups", {"owners"}}, {"count", 1}}}});
  }
  return {{"version", 1}, {"rules", rules}};
}

json KernelConfig(const std::string& dir, const TestPki& pki, const std::string& jwks_file) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/customers.csv") << "id,name\n1,Ada\n2,Grace\n";
  return {
      {"server",
       {{"listen_address", "127.0.0.1"},
        {"port", 0},
        {"tls",
         {{"certificate_file", pki.server.cert_file},
          {"private_key_file", pki.server.key_file},
          {"client_ca_file", pki.ca.cert_file}}}}},
      {"state_dir", dir + "/state"},
      {"identity",
       {{{"name", "certificates"},
         {"plugin", Plugin("airlock_identity_mtls")},
         {"config",
          {{"ca_file", pki.ca.cert_file}, {"kind", "service"}, {"groups", {"analysts"}}}}},
        {{"name", "sso"},
         {"plugin", Plugin("airlock_identity_oidc_jwt")},
         {"config",
          {{"issuer", kIssuer},
           {"audience", kAudience},
           {"jwks_file", jwks_file},
           {"groups_claim", "groups"},
           {"kind_claim", "airlock_kind"}}}},
        {{"name", "tokens"},
         {"plugin", Plugin("airlock_identity_static_tokens")},
         {"config",
          {{"tokens",
            {{{"sha256", Sha256HexOf(kStaticToken)},
              {"subject", "alice"},
              {"kind", "human"},
              {"groups", {"analysts"}}}}}}}}}},
      {"policy",
       {{"name", "rules"}, {"plugin", Plugin("airlock_policy_rules")}, {"config", Policy()}}},
      {"isolator", {{"name", "inprocess"}, {"plugin", Plugin("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", Plugin("airlock_connector_files")}, {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets", {{{"name", "customers"}, {"connector", "files"}, {"object", "customers.csv"}}}}};
}

class IdentityE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    const std::string jwks_file = dir_.File("jwks.json");
    std::ofstream(jwks_file) << json{{"keys", {key_.PublicJwk("ES256")}}}.dump();
    kernel_ =
        std::make_unique<KernelProcess>(dir_.path(), KernelConfig(dir_.path(), pki_, jwks_file));
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    with_cert_ = std::make_unique<HttpClient>(
        "127.0.0.1", kernel_->port(),
        ClientTls{pki_.ca.cert_file, pki_.client.cert_file, pki_.client.key_file});
    without_cert_ = std::make_unique<HttpClient>("127.0.0.1", kernel_->port(),
                                                 ClientTls{pki_.ca.cert_file, "", ""});
  }

  std::string Jwt(int64_t exp_offset_seconds, const std::string& kind) {
    const int64_t now = NowSeconds();
    return SignJwt(key_, {{"alg", "ES256"}, {"kid", key_.kid}},
                   {{"iss", kIssuer},
                    {"aud", kAudience},
                    {"sub", "etl-bot"},
                    {"iat", now - 5},
                    {"exp", now + exp_offset_seconds},
                    {"groups", {"analysts"}},
                    {"airlock_kind", kind}});
  }

  static Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

  // Submits a request with `client`/`headers`, then checks that the record
  // and every audit record that names a principal carry `subject` and `kind`.
  void ExpectPrincipalEverywhere(HttpClient& client, const Headers& headers,
                                 const std::string& subject, const std::string& kind,
                                 const std::string& provider) {
    SCOPED_TRACE(provider + " " + kind);
    const json body = {{"datasets", {"customers"}}, {"window_seconds", 600}, {"purpose", "e2e"}};
    auto created = client.Post("/v1/requests", body.dump(), headers);
    ASSERT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    ASSERT_FALSE(id.empty());

    auto record = client.Get("/v1/requests/" + id, headers);
    ASSERT_EQ(record.status, 200u) << record.body;
    const json r = record.json();
    EXPECT_EQ(r["requester"]["subject"], subject);
    EXPECT_EQ(r["requester"]["kind"], kind);
    EXPECT_EQ(r["requester"]["provider"], provider);
    EXPECT_EQ(r["decision"]["rule"], "kind-" + kind) << r.dump();
    EXPECT_EQ(r["state"], "pending_approval");

    auto audit = client.Get("/v1/audit?request=" + id, headers);
    ASSERT_EQ(audit.status, 200u) << audit.body;
    int with_principal = 0;
    for (const auto& rec : audit.json().value("records", json::array())) {
      if (!rec.contains("principal")) continue;
      ++with_principal;
      EXPECT_EQ(rec["principal"]["subject"], subject) << rec.dump();
      EXPECT_EQ(rec["principal"]["kind"], kind) << rec.dump();
      EXPECT_EQ(rec["principal"]["provider"], provider) << rec.dump();
    }
    EXPECT_GE(with_principal, 2) << audit.body;  // submitted and evaluated
  }

  TempDir dir_{"airlock-e2e-id-"};
  TestPki pki_;
  TestKey key_ = MakeEcKey("sso-key-1", "P-256");
  std::unique_ptr<KernelProcess> kernel_;
  std::unique_ptr<HttpClient> with_cert_;
  std::unique_ptr<HttpClient> without_cert_;
};

TEST_F(IdentityE2E, ClientCertificateAuthenticates) {
  ExpectPrincipalEverywhere(*with_cert_, {}, "test-client", "service", "mtls");
}

TEST_F(IdentityE2E, JwtAuthenticates) {
  ExpectPrincipalEverywhere(*without_cert_, Bearer(Jwt(600, "agent")), "etl-bot", "agent",
                            "oidc-jwt");
}

TEST_F(IdentityE2E, StaticTokenAuthenticates) {
  ExpectPrincipalEverywhere(*without_cert_, Bearer(kStaticToken), "alice", "human",
                            "static-tokens");
}

TEST_F(IdentityE2E, ExpiredJwtIsRefusedWithItsReason) {
  const std::string token = Jwt(-3600, "agent");
  auto r = without_cert_->Get("/v1/requests", Bearer(token));
  EXPECT_EQ(r.status, 401u) << r.body;
  // The kernel names the provider before the provider's own reason code.
  EXPECT_EQ(r.json().value("message", "").rfind("plugin oidc-jwt: jwt.expired:", 0), 0u) << r.body;
  EXPECT_EQ(r.body.find(token), std::string::npos);
  // The refusal is audited with the same reason, and without the token.
  kernel_->Stop();
  std::ifstream audit(dir_.path() + "/state/audit.log");
  std::string line;
  bool found = false;
  while (std::getline(audit, line)) {
    EXPECT_EQ(line.find(token.substr(token.rfind('.') + 1)), std::string::npos);
    if (line.find("auth.refused") != std::string::npos &&
        line.find("jwt.expired") != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(IdentityE2E, CertificateFromAnotherCaIsRefusedNotPassedOn) {
  // The mtls provider refuses (it does not pass to the next provider), even
  // when a valid static token rides along.
  HttpClient foreign(
      "127.0.0.1", kernel_->port(),
      ClientTls{pki_.ca.cert_file, pki_.foreign_client.cert_file, pki_.foreign_client.key_file});
  auto r = foreign.Get("/v1/requests", Bearer(kStaticToken));
  EXPECT_EQ(r.status, 401u) << r.body;
  EXPECT_EQ(r.json().value("message", "").rfind("plugin mtls: mtls.untrusted_issuer:", 0), 0u)
      << r.body;
}

}  // namespace
}  // namespace airlock::test
