// Loads the built mtls plugin through the C ABI and authenticates client
// certificate chains made here (tests/support/test_pki) the way the kernel
// hands them over: PEM, leaf first.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/support/dl_plugin.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock {
namespace {

using testing::DlInstance;
using testing::DlPlugin;
using testing::FakeHost;
using namespace std::chrono_literals;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_identity_mtls.so";
using Instance = DlInstance<airlock_type_identity_vtable>;

struct AuthResult {
  airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
  std::string message;
  Json principal;
};

int64_t RealNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Certificates shared by the suite (made once: each is a fresh P-256 key).
struct Certs {
  test::TempDir dir{"airlock-mtls-"};
  test::TestPki pki = test::GenerateTestPki(dir.path());
  test::CertFiles intermediate;
  test::CertFiles via_intermediate;
  test::CertFiles spiffe;
  test::CertFiles server_only;  // EKU serverAuth only
  test::CertFiles no_eku;       // no extendedKeyUsage at all
  test::CertFiles future;       // not valid for another hour
  test::CertFiles emails;

  Certs() {
    test::CertSpec spec;
    spec.common_name = "Airlock Test Intermediate";
    spec.is_ca = true;
    intermediate = test::IssueCertificate(dir.path(), "intermediate", spec, &pki.ca);

    spec = {};
    spec.common_name = "deep-client";
    spec.client_auth = true;
    via_intermediate = test::IssueCertificate(dir.path(), "deep", spec, &intermediate);

    spec = {};
    spec.common_name = "etl-agent";
    spec.client_auth = true;
    spec.uris = {"https://not-spiffe.example.test/x", "spiffe://example.org/agents/etl"};
    spec.dns_names = {"etl.internal.example.org"};
    spiffe = test::IssueCertificate(dir.path(), "spiffe", spec, &pki.ca);

    spec = {};
    spec.common_name = "a-server";
    spec.server_auth = true;
    server_only = test::IssueCertificate(dir.path(), "server-only", spec, &pki.ca);

    spec = {};
    spec.common_name = "no-eku";
    no_eku = test::IssueCertificate(dir.path(), "no-eku", spec, &pki.ca);

    spec = {};
    spec.common_name = "future-client";
    spec.client_auth = true;
    spec.not_before = 1h;
    spec.not_after = 48h;
    future = test::IssueCertificate(dir.path(), "future", spec, &pki.ca);

    spec = {};
    spec.common_name = "mailer";
    spec.client_auth = true;
    spec.emails = {"carol@example.org"};
    emails = test::IssueCertificate(dir.path(), "emails", spec, &pki.ca);
  }
};

const Certs& SuiteCerts() {
  static const Certs certs;  // its directory goes at exit
  return certs;
}

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.set_now_micros(RealNowMicros());
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, host_.services(), &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_IDENTITY);
  }

  const airlock_type_identity_vtable& table() const {
    return plugin_->vtable<airlock_type_identity_vtable>();
  }

  Json BaseConfig() const {
    return {{"ca_file", SuiteCerts().pki.ca.cert_file}, {"groups", {"machines"}}};
  }

  std::unique_ptr<Instance> Create(const Json& config) {
    auto instance = std::make_unique<Instance>(table(), config.dump());
    EXPECT_TRUE(instance->ok()) << instance->error();
    return instance;
  }

  AuthResult AuthenticatePem(const Instance& instance, const std::string& pem) {
    const std::string name = "Authorization", value = "Bearer not-for-me";
    airlock_type_header header{name.data(), name.size(), value.data(), value.size()};
    airlock_type_http_request_view view{};
    view.size = sizeof(view);
    view.headers = &header;
    view.header_count = 1;
    view.peer_certificate_pem = pem.data();
    view.peer_certificate_pem_length = pem.size();
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    AuthResult result;
    result.status = table().authenticate(instance.get(), &view, buffer.get(), error.get());
    result.message = error.message();
    if (result.status == AIRLOCK_OK) result.principal = Json::parse(buffer.view());
    return result;
  }

  AuthResult AuthenticateChain(const Instance& instance, const std::vector<std::string>& files) {
    std::string pem;
    for (const auto& f : files) pem += test::ReadFile(f);
    return AuthenticatePem(instance, pem);
  }

  void ExpectRefused(const AuthResult& r, const std::string& code) {
    EXPECT_EQ(r.status, AIRLOCK_ERR_UNAUTHENTICATED) << r.message;
    EXPECT_EQ(r.message.rfind(code + ":", 0), 0u) << "expected " << code << ", got " << r.message;
  }

  FakeHost host_;
  std::unique_ptr<DlPlugin> plugin_;
};

TEST_F(MtlsTest, ManifestDescribesThePlugin) {
  EXPECT_STREQ(plugin_->info().name, "mtls");
  ASSERT_NE(plugin_->info().config_schema, nullptr);
  EXPECT_TRUE(Json::accept(plugin_->info().config_schema));
}

TEST_F(MtlsTest, ValidClientAuthenticatesByCommonName) {
  auto instance = Create(BaseConfig());
  auto r = AuthenticateChain(*instance, {SuiteCerts().pki.client.cert_file});
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(r.principal["subject"], "test-client");
  EXPECT_EQ(r.principal["kind"], "service");
  EXPECT_EQ(r.principal["groups"], Json({"machines"}));
  EXPECT_EQ(r.principal["attributes"]["certificate_sha256"].get<std::string>().size(), 64u);
  // The chain as a client sends it (leaf, then CA) works too.
  EXPECT_EQ(AuthenticatePem(*instance, test::ReadFile(SuiteCerts().pki.client_chain_file)).status,
            AIRLOCK_OK);
}

TEST_F(MtlsTest, IntermediateFromThePeerIsUsedToBuildTheChain) {
  auto instance = Create(BaseConfig());
  const Certs& c = SuiteCerts();
  auto r = AuthenticateChain(*instance, {c.via_intermediate.cert_file, c.intermediate.cert_file});
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(r.principal["subject"], "deep-client");
  // Without the intermediate the leaf cannot be chained.
  ExpectRefused(AuthenticateChain(*instance, {c.via_intermediate.cert_file}),
                "mtls.untrusted_issuer");
}

TEST_F(MtlsTest, NoCertificateIsNotApplicable) {
  auto instance = Create(BaseConfig());
  EXPECT_EQ(AuthenticatePem(*instance, "").status, AIRLOCK_ERR_NOT_APPLICABLE);
}

TEST_F(MtlsTest, ExpiredClientIsRefused) {
  auto instance = Create(BaseConfig());
  ExpectRefused(AuthenticateChain(*instance, {SuiteCerts().pki.expired_client.cert_file}),
                "mtls.expired");
}

TEST_F(MtlsTest, NotYetValidClientIsRefusedAtHostTime) {
  auto instance = Create(BaseConfig());
  const Certs& c = SuiteCerts();
  ExpectRefused(AuthenticateChain(*instance, {c.future.cert_file}), "mtls.not_yet_valid");
  // The host's clock decides: two hours on, the certificate is valid ...
  host_.set_now_micros(RealNowMicros() + int64_t{2} * 3600 * 1000000);
  EXPECT_EQ(AuthenticateChain(*instance, {c.future.cert_file}).status, AIRLOCK_OK);
  // ... and sixty days on, the ordinary client has expired.
  host_.set_now_micros(RealNowMicros() + int64_t{60} * 86400 * 1000000);
  ExpectRefused(AuthenticateChain(*instance, {c.pki.client.cert_file}), "mtls.expired");
}

TEST_F(MtlsTest, ClientFromAnotherCaIsRefused) {
  auto instance = Create(BaseConfig());
  const Certs& c = SuiteCerts();
  ExpectRefused(AuthenticateChain(*instance, {c.pki.foreign_client.cert_file}),
                "mtls.untrusted_issuer");
  // Sending the foreign CA along does not make it trusted.
  ExpectRefused(
      AuthenticateChain(*instance, {c.pki.foreign_client.cert_file, c.pki.other_ca.cert_file}),
      "mtls.untrusted_issuer");
  // Nor does presenting a CA certificate itself.
  ExpectRefused(AuthenticateChain(*instance, {c.pki.other_ca.cert_file}), "mtls.untrusted_issuer");
}

TEST_F(MtlsTest, WrongExtendedKeyUsageIsRefused) {
  auto instance = Create(BaseConfig());
  const Certs& c = SuiteCerts();
  ExpectRefused(AuthenticateChain(*instance, {c.server_only.cert_file}), "mtls.wrong_key_usage");
  ExpectRefused(AuthenticateChain(*instance, {c.no_eku.cert_file}), "mtls.wrong_key_usage");
  // A deployment may accept certificates without extendedKeyUsage ...
  Json lenient = BaseConfig();
  lenient["require_client_auth_eku"] = false;
  auto second = Create(lenient);
  EXPECT_EQ(AuthenticateChain(*second, {c.no_eku.cert_file}).status, AIRLOCK_OK);
  // ... but never one whose extendedKeyUsage excludes clientAuth.
  ExpectRefused(AuthenticateChain(*second, {c.server_only.cert_file}), "mtls.wrong_key_usage");
}

TEST_F(MtlsTest, SpiffeUriSubjectWithPrefixAndMappings) {
  Json config = BaseConfig();
  config["subject_from"] = "san_uri";
  config["subject_prefix"] = "spiffe://example.org/";
  config["mappings"] = {{{"subject", "agents/*"}, {"kind", "agent"}, {"groups", {"etl"}}},
                        {{"subject", "*"}, {"tenant", "default"}}};
  auto instance = Create(config);
  const Certs& c = SuiteCerts();
  auto r = AuthenticateChain(*instance, {c.spiffe.cert_file});
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(r.principal["subject"], "agents/etl");
  EXPECT_EQ(r.principal["kind"], "agent");
  EXPECT_EQ(r.principal["groups"], Json({"etl"}));
  EXPECT_FALSE(r.principal.contains("tenant"));
  // A client without a URI SAN of that prefix has no subject here.
  ExpectRefused(AuthenticateChain(*instance, {c.pki.client.cert_file}), "mtls.no_subject");
}

TEST_F(MtlsTest, DnsAndEmailSubjects) {
  const Certs& c = SuiteCerts();
  Json dns = BaseConfig();
  dns["subject_from"] = "san_dns";
  auto by_dns = Create(dns);
  EXPECT_EQ(AuthenticateChain(*by_dns, {c.spiffe.cert_file}).principal["subject"],
            "etl.internal.example.org");
  ExpectRefused(AuthenticateChain(*by_dns, {c.emails.cert_file}), "mtls.no_subject");

  Json email = BaseConfig();
  email["subject_from"] = "san_email";
  email["kind"] = "human";
  auto by_email = Create(email);
  auto r = AuthenticateChain(*by_email, {c.emails.cert_file});
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(r.principal["subject"], "carol@example.org");
  EXPECT_EQ(r.principal["kind"], "human");
}

TEST_F(MtlsTest, MalformedChainsAreRefused) {
  auto instance = Create(BaseConfig());
  ExpectRefused(AuthenticatePem(*instance,
                                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END "
                                "CERTIFICATE-----\n"),
                "mtls.malformed");
  ExpectRefused(AuthenticatePem(*instance, "garbage"), "mtls.malformed");
  std::string many;
  for (int i = 0; i < 10; ++i) many += test::ReadFile(SuiteCerts().pki.client.cert_file);
  ExpectRefused(AuthenticatePem(*instance, many), "mtls.malformed");
}

TEST_F(MtlsTest, ConfigurationErrorsNameTheKey) {
  auto try_create = [&](const Json& config) {
    Instance instance(table(), config.dump());
    return std::make_pair(instance.status(), instance.error());
  };
  EXPECT_NE(try_create(Json::object()).second.find("ca_file"), std::string::npos);
  Json config = BaseConfig();
  config["subject_from"] = "serial";
  EXPECT_NE(try_create(config).second.find("subject_from"), std::string::npos);
  config = BaseConfig();
  config["ca_file"] = SuiteCerts().dir.File("missing.pem");
  EXPECT_EQ(try_create(config).first, AIRLOCK_ERR_INVALID_ARGUMENT);
  config = BaseConfig();
  config["mappings"] = {{{"subject", "x"}, {"kind", "robot"}}};
  EXPECT_NE(try_create(config).second.find("mappings[0].kind"), std::string::npos);
}

}  // namespace
}  // namespace airlock
