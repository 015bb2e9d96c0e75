// Loads the built oidc-jwt plugin through the C ABI and authenticates real
// JWTs (keys generated here with OpenSSL) against a JWKS file, and against a
// JWKS served over HTTPS on 127.0.0.1.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/plugins/identity/oidc_jwt/jwks_server.h"
#include "tests/plugins/identity/oidc_jwt/jwt_maker.h"
#include "tests/support/dl_plugin.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock {
namespace {

using test::TestKey;
using testing::DlInstance;
using testing::DlPlugin;
using testing::FakeHost;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_identity_oidc_jwt.so";
constexpr char kIssuer[] = "https://idp.example.test/realms/airlock";
constexpr char kAudience[] = "airlock-api";
constexpr int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kMicros = 1000000;

using Instance = DlInstance<airlock_type_identity_vtable>;

struct AuthResult {
  airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
  std::string message;
  Json principal;
};

// Keys are costly under sanitizers: made once for the whole suite.
struct SuiteKeys {
  TestKey rsa = test::MakeRsaKey("rsa-1");
  TestKey rsa_other = test::MakeRsaKey("rsa-1");  // same kid, different key
  TestKey ec256 = test::MakeEcKey("ec-256", "P-256");
  TestKey ec384 = test::MakeEcKey("ec-384", "P-384");
  TestKey ed = test::MakeEd25519Key("ed-1");
};

const SuiteKeys& Keys() {
  static const SuiteKeys keys;
  return keys;
}

Json Jwks(std::initializer_list<Json> keys) {
  return {{"keys", Json(keys)}};
}

Json StandardJwks() {
  const SuiteKeys& k = Keys();
  return Jwks({k.rsa.PublicJwk(), k.ec256.PublicJwk("ES256"), k.ec384.PublicJwk(),
               k.ed.PublicJwk("EdDSA")});
}

Json Header(const std::string& alg, const std::string& kid) {
  Json h = {{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) h["kid"] = kid;
  return h;
}

Json Claims() {
  return {{"iss", kIssuer},
          {"aud", kAudience},
          {"sub", "alice"},
          {"iat", kNow - 10},
          {"nbf", kNow - 10},
          {"exp", kNow + 300},
          {"realm_access", {{"roles", {"analysts", "emea"}}}},
          {"airlock_kind", "human"},
          {"tid", "tenant-1"}};
}

class OidcJwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.set_now_micros(kNow * kMicros);
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, host_.services(), &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_IDENTITY);
  }

  const airlock_type_identity_vtable& table() const {
    return plugin_->vtable<airlock_type_identity_vtable>();
  }

  std::string WriteJwks(const Json& jwks, const std::string& name = "jwks.json") {
    const std::string path = dir_.File(name);
    std::ofstream(path) << jwks.dump();
    return path;
  }

  Json FileConfig(const Json& jwks = StandardJwks()) {
    return {{"issuer", kIssuer},
            {"audience", {"other-api", kAudience}},
            {"jwks_file", WriteJwks(jwks)},
            {"clock_skew_seconds", 60},
            {"groups_claim", "realm_access.roles"},
            {"kind_claim", "airlock_kind"},
            {"tenant_claim", "tid"}};
  }

  std::unique_ptr<Instance> Create(const Json& config) {
    auto instance = std::make_unique<Instance>(table(), config.dump());
    EXPECT_TRUE(instance->ok()) << instance->error();
    return instance;
  }

  std::pair<airlock_type_status, std::string> TryCreate(const Json& config) {
    Instance instance(table(), config.dump());
    return {instance.status(), instance.error()};
  }

  AuthResult AuthenticateHeader(const Instance& instance, const std::string& authorization,
                                bool with_header = true) {
    std::vector<airlock_type_header> raw;
    const std::string name = "Authorization";
    if (with_header) {
      raw.push_back({name.data(), name.size(), authorization.data(), authorization.size()});
    }
    const std::string method = "GET", target = "/v1/requests", remote = "127.0.0.1";
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
    result.status = table().authenticate(instance.get(), &view, buffer.get(), error.get());
    result.message = error.message();
    if (result.status == AIRLOCK_OK) result.principal = Json::parse(buffer.view());
    seen_messages_.push_back(result.message);
    return result;
  }

  AuthResult Authenticate(const Instance& instance, const std::string& token) {
    seen_tokens_.push_back(token);
    return AuthenticateHeader(instance, "Bearer " + token);
  }

  // The refusal reason starts with `code` followed by ':'.
  void ExpectRefused(const AuthResult& r, const std::string& code) {
    EXPECT_EQ(r.status, AIRLOCK_ERR_UNAUTHENTICATED) << r.message;
    EXPECT_EQ(r.message.rfind(code + ":", 0), 0u) << "expected " << code << ", got " << r.message;
  }

  // True when one line of the host's log holds every one of `parts`.
  bool Logged(const std::vector<std::string>& parts) const {
    for (const auto& line : host_.logs()) {
      bool all = true;
      for (const auto& part : parts) all = all && line.find(part) != std::string::npos;
      if (all) return true;
    }
    return false;
  }

  void TearDown() override {
    // No message or log line ever carries a token or its signature.
    std::vector<std::string> texts = seen_messages_;
    for (const auto& line : host_.logs()) texts.push_back(line);
    for (const auto& token : seen_tokens_) {
      const std::string signature = token.substr(token.rfind('.') + 1);
      for (const auto& text : texts) {
        EXPECT_EQ(text.find(token), std::string::npos) << text;
        if (signature.size() >= 16) {
          EXPECT_EQ(text.find(signature), std::string::npos) << text;
        }
      }
    }
  }

  FakeHost host_;
  std::unique_ptr<DlPlugin> plugin_;
  test::TempDir dir_{"airlock-oidc-"};
  std::vector<std::string> seen_messages_;
  std::vector<std::string> seen_tokens_;
};

TEST_F(OidcJwtTest, ManifestDescribesThePlugin) {
  EXPECT_STREQ(plugin_->info().name, "oidc-jwt");
  ASSERT_NE(plugin_->info().config_schema, nullptr);
  EXPECT_TRUE(Json::accept(plugin_->info().config_schema));
  EXPECT_GE(table().size, static_cast<size_t>(AIRLOCK_IDENTITY_VTABLE_1_0_SIZE));
}

TEST_F(OidcJwtTest, AcceptsEveryAlgorithm) {
  auto instance = Create(FileConfig());
  const SuiteKeys& k = Keys();
  const std::vector<std::pair<std::string, const TestKey*>> cases = {
      {"RS256", &k.rsa},   {"RS384", &k.rsa},   {"RS512", &k.rsa}, {"PS256", &k.rsa},
      {"ES256", &k.ec256}, {"ES384", &k.ec384}, {"EdDSA", &k.ed}};
  for (const auto& [alg, key] : cases) {
    SCOPED_TRACE(alg);
    auto r = Authenticate(*instance, test::SignJwt(*key, Header(alg, key->kid), Claims()));
    ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
    EXPECT_EQ(r.principal["subject"], "alice");
    EXPECT_EQ(r.principal["kind"], "human");
    EXPECT_EQ(r.principal["groups"], Json({"analysts", "emea"}));
    EXPECT_EQ(r.principal["tenant"], "tenant-1");
    EXPECT_EQ(r.principal["attributes"]["issuer"], kIssuer);
  }
}

TEST_F(OidcJwtTest, TokenWithoutKidUsesTheKeyThatFitsTheAlgorithm) {
  auto instance = Create(FileConfig());
  auto r = Authenticate(*instance, test::SignJwt(Keys().ed, Header("EdDSA", ""), Claims()));
  EXPECT_EQ(r.status, AIRLOCK_OK) << r.message;
}

TEST_F(OidcJwtTest, OtherCredentialsAreNotApplicable) {
  auto instance = Create(FileConfig());
  EXPECT_EQ(AuthenticateHeader(*instance, "", /*with_header=*/false).status,
            AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(AuthenticateHeader(*instance, "Basic YWxpY2U6c2VjcmV0").status,
            AIRLOCK_ERR_NOT_APPLICABLE);
  // A static API token: no two dots, not a JWT.
  EXPECT_EQ(AuthenticateHeader(*instance, "Bearer alk_static_token_123").status,
            AIRLOCK_ERR_NOT_APPLICABLE);
  EXPECT_EQ(AuthenticateHeader(*instance, "Bearer a.b").status, AIRLOCK_ERR_NOT_APPLICABLE);
}

TEST_F(OidcJwtTest, RefusesAlgNone) {
  auto instance = Create(FileConfig());
  const std::string unsigned_token =
      test::B64Url(Json({{"alg", "none"}}).dump()) + "." + test::B64Url(Claims().dump()) + ".";
  ExpectRefused(Authenticate(*instance, unsigned_token), "jwt.alg_none");
  const std::string shouty =
      test::B64Url(Json({{"alg", "NoNe"}}).dump()) + "." + test::B64Url(Claims().dump()) + ".";
  ExpectRefused(Authenticate(*instance, shouty), "jwt.alg_none");
}

TEST_F(OidcJwtTest, RefusesHmacSignedWithThePublicKey) {
  // The key-confusion attack: HS256 with the RSA public key as the secret.
  auto instance = Create(FileConfig());
  const TestKey& rsa = Keys().rsa;
  ExpectRefused(
      Authenticate(*instance, test::SignHs256(rsa.PublicPem(), Header("HS256", rsa.kid), Claims())),
      "jwt.alg_mismatch");
  ExpectRefused(Authenticate(*instance, test::SignHs256(rsa.PublicJwk().dump(),
                                                        Header("HS256", rsa.kid), Claims())),
                "jwt.alg_mismatch");
}

TEST_F(OidcJwtTest, RefusesUnknownKid) {
  const Json config = FileConfig();
  auto instance = Create(config);
  const TestKey stranger = test::MakeEcKey("stranger", "P-256");
  const AuthResult r =
      Authenticate(*instance, test::SignJwt(stranger, Header("ES256", "stranger"), Claims()));
  ExpectRefused(r, "jwt.unknown_kid");
  // The caller is unauthenticated: where the server keeps its keys stays in
  // the kernel's log.
  const std::string jwks_file = config.at("jwks_file").get<std::string>();
  EXPECT_EQ(r.message.find(jwks_file), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("file"), std::string::npos) << r.message;
  EXPECT_TRUE(Logged({"jwt.unknown_kid", jwks_file, "stranger"}))
      << "the log names the kid and the JWKS file";
}

TEST_F(OidcJwtTest, RefusesBadSignatures) {
  auto instance = Create(FileConfig());
  const SuiteKeys& k = Keys();
  // Signed by another key that claims the same kid.
  ExpectRefused(
      Authenticate(*instance, test::SignJwt(k.rsa_other, Header("RS256", "rsa-1"), Claims())),
      "jwt.bad_signature");
  // A genuine token whose payload was swapped afterwards.
  const std::string good = test::SignJwt(k.ec256, Header("ES256", "ec-256"), Claims());
  Json forged = Claims();
  forged["sub"] = "mallory";
  const size_t first = good.find('.'), last = good.rfind('.');
  const std::string swapped =
      good.substr(0, first) + "." + test::B64Url(forged.dump()) + good.substr(last);
  ExpectRefused(Authenticate(*instance, swapped), "jwt.bad_signature");
  // An ECDSA signature of the wrong length (60 bytes, not 64).
  ExpectRefused(
      Authenticate(*instance, good.substr(0, last + 1) + test::B64Url(std::string(60, '\x01'))),
      "jwt.bad_signature");
}

TEST_F(OidcJwtTest, RefusesExpiredAndNotYetValidTokensWithSkew) {
  auto instance = Create(FileConfig());
  const TestKey& key = Keys().ec256;
  auto sign = [&](Json claims) { return test::SignJwt(key, Header("ES256", key.kid), claims); };
  Json claims = Claims();
  claims["exp"] = kNow - 61;
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.expired");
  claims["exp"] = kNow - 30;  // within the 60 s skew
  EXPECT_EQ(Authenticate(*instance, sign(claims)).status, AIRLOCK_OK);

  claims = Claims();
  claims["nbf"] = kNow + 120;
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.not_yet_valid");
  claims["nbf"] = kNow + 30;
  EXPECT_EQ(Authenticate(*instance, sign(claims)).status, AIRLOCK_OK);

  claims = Claims();
  claims["iat"] = kNow + 120;  // issued in the future
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.not_yet_valid");

  claims = Claims();
  claims.erase("exp");
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.missing_claim");

  // The host's clock decides: move it past expiry.
  host_.set_now_micros((kNow + 300 + 60) * kMicros);
  ExpectRefused(Authenticate(*instance, sign(Claims())), "jwt.expired");
}

TEST_F(OidcJwtTest, RefusesWrongIssuerAndAudience) {
  auto instance = Create(FileConfig());
  const TestKey& key = Keys().ed;
  auto sign = [&](Json claims) { return test::SignJwt(key, Header("EdDSA", key.kid), claims); };
  Json claims = Claims();
  claims["iss"] = "https://evil.example.test/";
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.wrong_issuer");
  claims.erase("iss");
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.wrong_issuer");

  claims = Claims();
  claims["aud"] = "someone-else";
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.wrong_audience");
  claims["aud"] = {"someone-else", "another"};
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.wrong_audience");
  claims.erase("aud");
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.wrong_audience");
  claims["aud"] = {"someone-else", kAudience};
  EXPECT_EQ(Authenticate(*instance, sign(claims)).status, AIRLOCK_OK);
}

TEST_F(OidcJwtTest, RefusesMalformedTokens) {
  auto instance = Create(FileConfig());
  const TestKey& key = Keys().ec256;
  const std::string good = test::SignJwt(key, Header("ES256", key.kid), Claims());
  const std::string rest = good.substr(good.find('.'));
  ExpectRefused(Authenticate(*instance, "e*30." + rest.substr(1)), "jwt.malformed");
  ExpectRefused(Authenticate(*instance, test::B64Url("{not json") + rest), "jwt.malformed");
  ExpectRefused(Authenticate(*instance, test::B64Url("[1,2]") + rest), "jwt.malformed");
  ExpectRefused(Authenticate(*instance, good + ".extra"), "jwt.malformed");
  ExpectRefused(Authenticate(*instance, test::B64Url(Json({{"typ", "JWT"}}).dump()) + rest),
                "jwt.malformed");
  // Padding is not base64url as JOSE uses it.
  ExpectRefused(Authenticate(*instance, good + "=="), "jwt.malformed");
  // A payload that is signed but is not JSON.
  ExpectRefused(
      Authenticate(*instance, test::SignJwtRaw(key, Header("ES256", key.kid), "not json")),
      "jwt.malformed");
  // Oversized: a real signed token whose claims push it over the bound.
  Json big = Claims();
  big["padding"] = std::string(20000, 'x');
  ExpectRefused(Authenticate(*instance, test::SignJwt(key, Header("ES256", key.kid), big)),
                "jwt.malformed");
  // crit extensions are not understood, so they are refused.
  Json crit = Header("ES256", key.kid);
  crit["crit"] = {"exp"};
  ExpectRefused(Authenticate(*instance, test::SignJwt(key, crit, Claims())), "jwt.malformed");
}

TEST_F(OidcJwtTest, KeyMustAgreeWithTheTokenHeader) {
  const SuiteKeys& k = Keys();
  Json jwks = StandardJwks();
  Json rs256_only = k.rsa.PublicJwk("RS256");
  rs256_only["kid"] = "rs256-only";
  Json enc = k.ec256.PublicJwk();
  enc["kid"] = "for-encryption";
  enc["use"] = "enc";
  jwks["keys"].push_back(rs256_only);
  jwks["keys"].push_back(enc);
  auto instance = Create(FileConfig(jwks));

  // The key says RS256, the token RS384.
  ExpectRefused(
      Authenticate(*instance, test::SignJwt(k.rsa, Header("RS384", "rs256-only"), Claims())),
      "jwt.alg_mismatch");
  EXPECT_EQ(
      Authenticate(*instance, test::SignJwt(k.rsa, Header("RS256", "rs256-only"), Claims())).status,
      AIRLOCK_OK);
  // An EC key named by an RSA token.
  ExpectRefused(Authenticate(*instance, test::SignJwt(k.rsa, Header("RS256", "ec-256"), Claims())),
                "jwt.alg_mismatch");
  // ES384 on a P-256 key (its JWK declares no alg, the curve decides).
  Json no_alg = Jwks({k.ec256.PublicJwk()});
  auto second = Create(FileConfig(no_alg));
  ExpectRefused(Authenticate(*second, test::SignJwt(k.ec384, Header("ES384", "ec-256"), Claims())),
                "jwt.alg_mismatch");
  // A key published for encryption.
  ExpectRefused(
      Authenticate(*instance, test::SignJwt(k.ec256, Header("ES256", "for-encryption"), Claims())),
      "jwt.alg_mismatch");
}

TEST_F(OidcJwtTest, AlgorithmAllowListIsEnforced) {
  Json config = FileConfig();
  config["algorithms"] = {"ES256"};
  auto instance = Create(config);
  const SuiteKeys& k = Keys();
  ExpectRefused(Authenticate(*instance, test::SignJwt(k.rsa, Header("RS256", "rsa-1"), Claims())),
                "jwt.alg_mismatch");
  EXPECT_EQ(
      Authenticate(*instance, test::SignJwt(k.ec256, Header("ES256", "ec-256"), Claims())).status,
      AIRLOCK_OK);
}

TEST_F(OidcJwtTest, MapsClaimsLikeKeycloakAndEntra) {
  const TestKey& key = Keys().ed;
  auto sign = [&](Json claims) { return test::SignJwt(key, Header("EdDSA", key.kid), claims); };

  // Entra-style: oid as subject, roles, tid as tenant, idtyp app -> service.
  Json entra = FileConfig();
  entra["subject_claim"] = "oid";
  entra["groups_claim"] = "roles";
  entra["kind_claim"] = "idtyp";
  entra["kind_map"] = {{"app", "service"}, {"user", "human"}};
  auto instance = Create(entra);
  Json claims = Claims();
  claims["oid"] = "00000000-1111-2222-3333-444444444444";
  claims["roles"] = {"Airlock.Reader"};
  claims["idtyp"] = "app";
  auto r = Authenticate(*instance, sign(claims));
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(r.principal["subject"], "00000000-1111-2222-3333-444444444444");
  EXPECT_EQ(r.principal["kind"], "service");
  EXPECT_EQ(r.principal["groups"], Json({"Airlock.Reader"}));
  EXPECT_EQ(r.principal["tenant"], "tenant-1");
  claims["idtyp"] = "robot";
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.bad_claim");
  claims.erase("idtyp");  // absent: the fixed default kind
  EXPECT_EQ(Authenticate(*instance, sign(claims)).principal["kind"], "human");
  claims.erase("oid");
  ExpectRefused(Authenticate(*instance, sign(claims)), "jwt.missing_claim");

  // A namespaced claim whose name contains dots, and a fixed agent kind.
  Json ns = FileConfig();
  ns["groups_claim"] = "https://airlock.example.test/groups";
  ns.erase("kind_claim");
  ns["kind"] = "agent";
  auto second = Create(ns);
  claims = Claims();
  claims["https://airlock.example.test/groups"] = {"bots"};
  r = Authenticate(*second, sign(claims));
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(r.principal["kind"], "agent");
  EXPECT_EQ(r.principal["groups"], Json({"bots"}));
  claims["https://airlock.example.test/groups"] = {{{"nested", true}}};
  ExpectRefused(Authenticate(*second, sign(claims)), "jwt.bad_claim");
}

TEST_F(OidcJwtTest, ConfigurationErrorsNameTheKey) {
  Json config = FileConfig();
  config.erase("issuer");
  EXPECT_NE(TryCreate(config).second.find("issuer"), std::string::npos);
  config = FileConfig();
  config["jwks_url"] = "https://127.0.0.1:1/jwks";
  EXPECT_NE(TryCreate(config).second.find("exactly one"), std::string::npos);
  config = FileConfig();
  config.erase("jwks_file");
  config["jwks_url"] = "http://idp.example.test/jwks";
  EXPECT_NE(TryCreate(config).second.find("https"), std::string::npos);
  config = FileConfig();
  config["algorithms"] = {"HS256"};
  EXPECT_NE(TryCreate(config).second.find("HS256"), std::string::npos);
  config = FileConfig();
  config["colour"] = "blue";
  EXPECT_NE(TryCreate(config).second.find("colour"), std::string::npos);
  config = FileConfig();
  config["jwks_file"] = WriteJwks({{"keys", Json::array()}}, "empty.json");
  EXPECT_EQ(TryCreate(config).first, AIRLOCK_ERR_INVALID_ARGUMENT);
  config["jwks_file"] = dir_.File("missing.json");
  EXPECT_EQ(TryCreate(config).first, AIRLOCK_ERR_INVALID_ARGUMENT);
  // Private or symmetric keys are never loaded.
  Json priv = Keys().ec256.PublicJwk();
  priv["d"] = "AAAA";
  config["jwks_file"] = WriteJwks(Jwks({priv, {{"kty", "oct"}, {"k", "c2VjcmV0"}}}), "priv.json");
  EXPECT_EQ(TryCreate(config).first, AIRLOCK_ERR_INVALID_ARGUMENT);
}

// --- JWKS over HTTPS --------------------------------------------------------

class OidcJwtHttpsTest : public OidcJwtTest {
 protected:
  void SetUp() override {
    OidcJwtTest::SetUp();
    pki_ = test::GenerateTestPki(dir_.path());
    server_ = std::make_unique<test::JwksServer>(pki_.server);
    server_->set_document(Jwks({Keys().ec256.PublicJwk()}).dump());
  }

  Json UrlConfig(const std::string& url, int refresh_seconds = 60) {
    return {{"issuer", kIssuer},       {"audience", kAudience},
            {"jwks_url", url},         {"jwks_ca_file", pki_.ca.cert_file},
            {"jwks_timeout_ms", 2000}, {"jwks_refresh_min_interval_seconds", refresh_seconds}};
  }

  std::string Token(const TestKey& key, const std::string& alg) {
    return test::SignJwt(key, Header(alg, key.kid), Claims());
  }

  test::TestPki pki_;
  std::unique_ptr<test::JwksServer> server_;
};

TEST_F(OidcJwtHttpsTest, FetchesRotatesAndBoundsTheRefreshRate) {
  auto instance = Create(UrlConfig(server_->url()));
  EXPECT_EQ(server_->fetches(), 1);  // fetched once at start
  const SuiteKeys& k = Keys();
  EXPECT_EQ(Authenticate(*instance, Token(k.ec256, "ES256")).status, AIRLOCK_OK);
  EXPECT_EQ(server_->fetches(), 1);  // served from the cache

  // The issuer rotates: a new kid appears. Once the minimum interval has
  // passed, the unknown kid triggers exactly one refresh.
  server_->set_document(Jwks({k.ec256.PublicJwk(), k.ed.PublicJwk()}).dump());
  host_.set_now_micros((kNow + 61) * kMicros);
  auto rotated = Authenticate(*instance, Token(k.ed, "EdDSA"));
  EXPECT_EQ(rotated.status, AIRLOCK_OK) << rotated.message;
  EXPECT_EQ(server_->fetches(), 2);

  // Made-up kids: one fetch per interval, however many tokens ask.
  const TestKey stranger = test::MakeEcKey("stranger", "P-256");
  host_.set_now_micros((kNow + 130) * kMicros);
  for (int i = 0; i < 5; ++i) {
    ExpectRefused(Authenticate(*instance, Token(stranger, "ES256")), "jwt.unknown_kid");
  }
  EXPECT_EQ(server_->fetches(), 3);
  // Within the interval a kid that did appear meanwhile must wait too.
  server_->set_document(Jwks({k.ec256.PublicJwk(), k.ed.PublicJwk(), k.rsa.PublicJwk()}).dump());
  ExpectRefused(Authenticate(*instance, Token(k.rsa, "RS256")), "jwt.unknown_kid");
  EXPECT_EQ(server_->fetches(), 3);
  host_.set_now_micros((kNow + 191) * kMicros);
  EXPECT_EQ(Authenticate(*instance, Token(k.rsa, "RS256")).status, AIRLOCK_OK);
  EXPECT_EQ(server_->fetches(), 4);
}

TEST_F(OidcJwtHttpsTest, ConcurrentCallersShareOneFetch) {
  // No rate limit: only sharing the fetch in flight keeps this to one fetch.
  auto instance = Create(UrlConfig(server_->url(), /*refresh_seconds=*/0));
  ASSERT_EQ(server_->fetches(), 1);
  const SuiteKeys& k = Keys();
  server_->set_document(Jwks({k.ec256.PublicJwk(), k.ed.PublicJwk()}).dump());
  server_->set_response_delay(std::chrono::milliseconds(400));
  const std::string token = Token(k.ed, "EdDSA");
  seen_tokens_.push_back(token);
  constexpr int kCallers = 6;
  std::vector<airlock_type_status> statuses(kCallers, AIRLOCK_ERR_UNKNOWN);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      const std::string header = "Bearer " + token;
      const std::string name = "Authorization";
      airlock_type_header raw{name.data(), name.size(), header.data(), header.size()};
      airlock_type_http_request_view view{};
      view.size = sizeof(view);
      view.headers = &raw;
      view.header_count = 1;
      abi::BufferHolder buffer;
      abi::ErrorHolder error;
      statuses[i] = table().authenticate(instance->get(), &view, buffer.get(), error.get());
    });
  }
  for (auto& t : callers) t.join();
  for (int i = 0; i < kCallers; ++i) EXPECT_EQ(statuses[i], AIRLOCK_OK) << i;
  EXPECT_EQ(server_->fetches(), 2);
}

TEST_F(OidcJwtHttpsTest, UnreachableJwksIsRefusedWithAReason) {
  // A port nobody listens on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  const int port = ntohs(addr.sin_port);
  ::close(fd);

  auto instance = Create(UrlConfig("https://127.0.0.1:" + std::to_string(port) + "/jwks"));
  auto r = Authenticate(*instance, Token(Keys().ec256, "ES256"));
  ExpectRefused(r, "jwt.jwks_unavailable");
  // The reason (and the JWKS URL) is the operator's, in the log; the
  // unauthenticated caller learns only that no keys are available.
  EXPECT_EQ(r.message.find("127.0.0.1"), std::string::npos) << r.message;
  EXPECT_TRUE(Logged({"jwt.jwks_unavailable", "connect"}));
}

TEST_F(OidcJwtHttpsTest, StalledJwksServerTimesOut) {
  // Listening but never accepting: TCP connects, the TLS handshake stalls.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  Json config = UrlConfig("https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/jwks");
  config["jwks_timeout_ms"] = 300;
  const auto start = std::chrono::steady_clock::now();
  auto instance = Create(config);
  auto r = Authenticate(*instance, Token(Keys().ec256, "ES256"));
  ExpectRefused(r, "jwt.jwks_unavailable");
  // The reason (and the JWKS URL) is the operator's, in the log; the
  // unauthenticated caller learns only that no keys are available.
  EXPECT_EQ(r.message.find("127.0.0.1"), std::string::npos) << r.message;
  EXPECT_TRUE(Logged({"jwt.jwks_unavailable", "timed out"}));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ::close(fd);
}

TEST_F(OidcJwtHttpsTest, UntrustedJwksServerIsRefused) {
  Json config = UrlConfig(server_->url());
  config["jwks_ca_file"] = pki_.other_ca.cert_file;
  auto instance = Create(config);
  auto r = Authenticate(*instance, Token(Keys().ec256, "ES256"));
  ExpectRefused(r, "jwt.jwks_unavailable");
  // The reason (and the JWKS URL) is the operator's, in the log; the
  // unauthenticated caller learns only that no keys are available.
  EXPECT_EQ(r.message.find("127.0.0.1"), std::string::npos) << r.message;
  EXPECT_TRUE(Logged({"jwt.jwks_unavailable", "not trusted"}));
  EXPECT_EQ(server_->fetches(), 0);
}

TEST_F(OidcJwtHttpsTest, OversizedJwksIsRefused) {
  Json config = UrlConfig(server_->url());
  config["jwks_max_bytes"] = 1024;
  Json big = Jwks({Keys().ec256.PublicJwk()});
  big["padding"] = std::string(4096, 'x');
  server_->set_document(big.dump());
  auto instance = Create(config);
  auto r = Authenticate(*instance, Token(Keys().ec256, "ES256"));
  ExpectRefused(r, "jwt.jwks_unavailable");
  // Why is the operator's, in the log; the caller learns only that no keys
  // are available.
  EXPECT_EQ(r.message.find("exceeds"), std::string::npos) << r.message;
  EXPECT_TRUE(Logged({"jwt.jwks_unavailable", "exceeds"}));
}

}  // namespace
}  // namespace airlock
