// Bearer JWTs as the oidc-jwt identity provider verifies them
// (OidcJwt::VerifyToken, with a JWKS file holding an Ed25519, a P-256 and an
// RSA key made at start). The first input byte picks the mode:
//   0: the rest is the compact token as a caller sends it;
//   1: the rest is "<header JSON>\n<payload JSON>", signed here with the
//      Ed25519 key (kid "ed"), so the claim checks and the principal mapping
//      behind the signature are reached;
//   2: the rest is an ECDSA signature (DER, then JOSE r||s) for the
//      conversions between the two forms.
// Also checked: base64url decoding accepts exactly one encoding per value.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/cpp/host.hpp"
#include "plugins/identity/oidc_jwt/base64url.h"
#include "plugins/identity/oidc_jwt/oidc_jwt.h"
#include "plugins/identity/oidc_jwt/signature.h"
#include "tests/support/dl_plugin.h"

namespace {

namespace jwt = airlock::identity::oidc_jwt;
using nlohmann::json;

constexpr int64_t kNowSeconds = 1767225600;  // 2026-01-01T00:00:00Z

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "jwt: %s\n", what.c_str());
  std::abort();
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Pkey Generate(const char* type, const char* group, unsigned rsa_bits) {
  EVP_PKEY* key = nullptr;
  if (group != nullptr) {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type, group);
  } else if (rsa_bits != 0) {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type, static_cast<size_t>(rsa_bits));
  } else {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  if (key == nullptr) Fail(std::string("cannot generate a ") + type + " key");
  return Pkey(key);
}

std::string OctetParam(EVP_PKEY* key, const char* name) {
  unsigned char buffer[1024];
  size_t length = 0;
  if (EVP_PKEY_get_octet_string_param(key, name, buffer, sizeof buffer, &length) != 1) {
    Fail(std::string("cannot read key parameter ") + name);
  }
  return std::string(reinterpret_cast<const char*>(buffer), length);
}

std::string BigParam(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) Fail(std::string("no parameter ") + name);
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

struct Fixture {
  Fixture() {
    char dir[] = "/tmp/airlock-fuzz-jwt-XXXXXX";
    if (::mkdtemp(dir) == nullptr) Fail("mkdtemp failed");
    directory = dir;
    ed25519 = Generate("ED25519", nullptr, 0);
    Pkey ec = Generate("EC", "P-256", 0);
    Pkey rsa = Generate("RSA", nullptr, 2048);
    const std::string point = OctetParam(ec.get(), OSSL_PKEY_PARAM_PUB_KEY);  // 04 || x || y
    const json jwks = {
        {"keys",
         {{{"kty", "OKP"},
           {"crv", "Ed25519"},
           {"kid", "ed"},
           {"x", jwt::Base64UrlEncode(OctetParam(ed25519.get(), OSSL_PKEY_PARAM_PUB_KEY))}},
          {{"kty", "EC"},
           {"crv", "P-256"},
           {"kid", "ec"},
           {"x", jwt::Base64UrlEncode(point.substr(1, 32))},
           {"y", jwt::Base64UrlEncode(point.substr(33, 32))}},
          {{"kty", "RSA"},
           {"kid", "rsa"},
           {"n", jwt::Base64UrlEncode(BigParam(rsa.get(), OSSL_PKEY_PARAM_RSA_N))},
           {"e", jwt::Base64UrlEncode(BigParam(rsa.get(), OSSL_PKEY_PARAM_RSA_E))}}}}};
    const std::string jwks_path = directory + "/jwks.json";
    std::ofstream(jwks_path) << jwks.dump();
    host.set_now_micros(kNowSeconds * 1000000);
    const json config = {{"issuer", "https://issuer.example"},
                         {"audience", {"airlock", "airlock-api"}},
                         {"jwks_file", jwks_path},
                         {"groups_claim", "realm_access.roles"},
                         {"kind_claim", "kind"},
                         {"kind_map", {{"robot", "agent"}, {"job", "service"}}},
                         {"tenant_claim", "org"}};
    auto created = jwt::OidcJwt::Create(config, airlock::sdk::Host(host.services(), "oidc-jwt"));
    if (!created.ok()) Fail("provider not created: " + created.status().message());
    provider = std::move(created).value();
  }
  std::string Sign(std::string_view signing_input) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    unsigned char signature[64];
    size_t length = sizeof signature;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, ed25519.get()) != 1 ||
        EVP_DigestSign(ctx.get(), signature, &length,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      Fail("signing failed");
    }
    return std::string(reinterpret_cast<const char*>(signature), length);
  }

  std::string directory;
  airlock::testing::FakeHost host;
  Pkey ed25519;
  std::unique_ptr<jwt::OidcJwt> provider;
};

Fixture& TheFixture() {
  static Fixture* fixture = new Fixture();  // lives for the process; its files go at exit
  return *fixture;
}

// Decoding accepts one encoding per value: what decodes encodes back to itself.
void CheckBase64(std::string_view text) {
  auto decoded = jwt::Base64UrlDecode(text);
  if (decoded && jwt::Base64UrlEncode(*decoded) != text) Fail("base64url is not canonical");
}

void CheckToken(std::string_view token) {
  for (size_t start = 0, dot = 0; dot != std::string_view::npos; start = dot + 1) {
    dot = token.find('.', start);
    CheckBase64(token.substr(start, dot == std::string_view::npos ? dot : dot - start));
  }
  auto principal = TheFixture().provider->VerifyToken(token);
  if (principal.ok() && principal->subject.empty()) Fail("a principal without a subject");
}

void SignedToken(std::string_view text) {
  const size_t newline = text.find('\n');
  if (newline == std::string_view::npos) return;
  const std::string signing_input = jwt::Base64UrlEncode(text.substr(0, newline)) + "." +
                                    jwt::Base64UrlEncode(text.substr(newline + 1));
  CheckToken(signing_input + "." + jwt::Base64UrlEncode(TheFixture().Sign(signing_input)));
}

void EcdsaForms(std::string_view bytes) {
  for (size_t size : {size_t{32}, size_t{48}}) {
    const std::string jose = jwt::DerToJoseEcdsa(bytes, size);
    if (!jose.empty()) {
      if (jose.size() != 2 * size) Fail("JOSE signature of the wrong size");
      const std::string der = jwt::JoseToDerEcdsa(jose, size);
      if (der.empty() || jwt::DerToJoseEcdsa(der, size) != jose) Fail("ECDSA forms disagree");
    }
    const std::string der = jwt::JoseToDerEcdsa(bytes, size);
    if (!der.empty() && jwt::DerToJoseEcdsa(der, size) != bytes) Fail("JOSE r||s not preserved");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)TheFixture();
  std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(TheFixture().directory, ignored);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckToken(rest);
      break;
    case 1:
      SignedToken(rest);
      break;
    default:
      EcdsaForms(rest);
      break;
  }
  return 0;
}
