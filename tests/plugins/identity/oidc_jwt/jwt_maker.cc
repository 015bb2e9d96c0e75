#include "tests/plugins/identity/oidc_jwt/jwt_maker.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdexcept>
#include "airlock/cpp/base64url.hpp"

namespace airlock::test {
namespace {

using nlohmann::json;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("jwt_maker: ") + what);
}

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* key) {
  Check(key != nullptr, "key generation failed");
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

std::string BnParam(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  Check(EVP_PKEY_get_bn_param(key, name, &bn) == 1, name);
  const int size = pad > 0 ? pad : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(size), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
  BN_free(bn);
  return out;
}

const EVP_MD* DigestFor(const std::string& alg) {
  if (alg == "RS256" || alg == "PS256" || alg == "ES256") return EVP_sha256();
  if (alg == "RS384" || alg == "ES384") return EVP_sha384();
  if (alg == "RS512") return EVP_sha512();
  return nullptr;
}

std::string Sign(const TestKey& key, const std::string& alg, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  Check(EVP_DigestSignInit(ctx.get(), &pctx, DigestFor(alg), nullptr, key.pkey.get()) == 1,
        "sign init");
  if (alg == "PS256") {
    Check(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1,
          "pss");
  }
  size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  Check(EVP_DigestSign(ctx.get(), nullptr, &length, data, input.size()) == 1, "sign size");
  std::string sig(length, '\0');
  Check(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &length, data,
                       input.size()) == 1,
        "sign");
  sig.resize(length);
  if (alg == "ES256" || alg == "ES384") {
    const int half = alg == "ES256" ? 32 : 48;
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* ec = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    Check(ec != nullptr, "ecdsa der");
    std::string jose(static_cast<size_t>(2 * half), '\0');
    auto* o = reinterpret_cast<unsigned char*>(jose.data());
    BN_bn2binpad(ECDSA_SIG_get0_r(ec), o, half);
    BN_bn2binpad(ECDSA_SIG_get0_s(ec), o + half, half);
    ECDSA_SIG_free(ec);
    return jose;
  }
  return sig;
}

}  // namespace

std::string B64Url(std::string_view bytes) {
  return sdk::Base64UrlEncode(bytes);
}

json TestKey::PublicJwk(const std::string& alg) const {
  json jwk = {{"kty", kty}, {"kid", kid}, {"use", "sig"}};
  if (!alg.empty()) jwk["alg"] = alg;
  if (kty == "RSA") {
    jwk["n"] = B64Url(BnParam(pkey.get(), OSSL_PKEY_PARAM_RSA_N));
    jwk["e"] = B64Url(BnParam(pkey.get(), OSSL_PKEY_PARAM_RSA_E));
  } else if (kty == "EC") {
    const int size = crv == "P-256" ? 32 : 48;
    jwk["crv"] = crv;
    jwk["x"] = B64Url(BnParam(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, size));
    jwk["y"] = B64Url(BnParam(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, size));
  } else {
    unsigned char raw[32];
    size_t length = sizeof raw;
    Check(EVP_PKEY_get_raw_public_key(pkey.get(), raw, &length) == 1, "ed25519 public");
    jwk["crv"] = "Ed25519";
    jwk["x"] = B64Url(std::string_view(reinterpret_cast<const char*>(raw), length));
  }
  return jwk;
}

std::string TestKey::PublicPem() const {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  Check(PEM_write_bio_PUBKEY(bio.get(), pkey.get()) == 1, "pem");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

TestKey MakeRsaKey(const std::string& kid, int bits) {
  return {kid, "RSA", "", Own(EVP_RSA_gen(static_cast<unsigned>(bits)))};
}

TestKey MakeEcKey(const std::string& kid, const std::string& crv) {
  return {kid, "EC", crv, Own(EVP_EC_gen(crv == "P-256" ? "P-256" : "P-384"))};
}

TestKey MakeEd25519Key(const std::string& kid) {
  return {kid, "OKP", "Ed25519", Own(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"))};
}

std::string SignJwtRaw(const TestKey& key, const json& header, std::string_view payload_bytes) {
  const std::string input = B64Url(header.dump()) + "." + B64Url(payload_bytes);
  return input + "." + B64Url(Sign(key, header.at("alg").get<std::string>(), input));
}

std::string SignJwt(const TestKey& key, const json& header, const json& payload) {
  return SignJwtRaw(key, header, payload.dump());
}

std::string SignHs256(std::string_view secret, const json& header, const json& payload) {
  const std::string input = B64Url(header.dump()) + "." + B64Url(payload.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t length = 0;
  Check(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                  reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                  sizeof mac, &length) != nullptr,
        "hmac");
  return input + "." + B64Url(std::string_view(reinterpret_cast<const char*>(mac), length));
}

}  // namespace airlock::test
