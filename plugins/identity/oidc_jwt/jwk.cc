#include "jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <nlohmann/json.hpp>

#include "base64url.h"

namespace airlock::identity::oidc_jwt {
namespace {

using Json = nlohmann::json;

constexpr int kMinRsaBits = 2048;

struct Named {
  Algorithm alg;
  const char* name;
};
constexpr Named kAlgorithms[] = {
    {Algorithm::kRS256, "RS256"}, {Algorithm::kRS384, "RS384"}, {Algorithm::kRS512, "RS512"},
    {Algorithm::kPS256, "PS256"}, {Algorithm::kES256, "ES256"}, {Algorithm::kES384, "ES384"},
    {Algorithm::kEdDSA, "EdDSA"},
};

struct CtxFree {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct BldFree {
  void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};

std::string Field(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::optional<std::string> B64Field(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return Base64UrlDecode(it->get<std::string>());
}

// Builds a public key of `type` from OSSL parameters and checks it (an EC
// point must lie on its curve).
std::shared_ptr<EVP_PKEY> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return nullptr;
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> key(raw, PkeyFree{});
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> check(EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

Result<std::shared_ptr<EVP_PKEY>> RsaKey(const Json& j) {
  auto n = B64Field(j, "n");
  auto e = B64Field(j, "e");
  if (!n || !e || n->empty() || e->empty()) {
    return Status::InvalidArgument("RSA key needs base64url n and e");
  }
  std::unique_ptr<BIGNUM, BnFree> bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                                                 static_cast<int>(n->size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                                                 static_cast<int>(e->size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return Status::Internal("cannot build RSA parameters");
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return Status::InvalidArgument("RSA key is not valid");
  }
  std::shared_ptr<EVP_PKEY> key(raw, PkeyFree{});
  if (EVP_PKEY_get_bits(raw) < kMinRsaBits) {
    return Status::InvalidArgument("RSA key is shorter than 2048 bits");
  }
  return key;
}

Result<std::shared_ptr<EVP_PKEY>> EcKey(const Json& j, const std::string& crv) {
  size_t size = 0;
  const char* group = nullptr;
  if (crv == "P-256") {
    size = 32;
    group = "prime256v1";
  } else if (crv == "P-384") {
    size = 48;
    group = "secp384r1";
  } else {
    return Status::InvalidArgument("EC curve '" + crv + "' is not supported");
  }
  auto x = B64Field(j, "x");
  auto y = B64Field(j, "y");
  if (!x || !y || x->size() != size || y->size() != size) {
    return Status::InvalidArgument("EC key needs base64url x and y of the curve's size");
  }
  const std::string point = std::string(1, '\x04') + *x + *y;  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return Status::Internal("cannot build EC parameters");
  }
  auto key = FromData("EC", bld.get());
  if (!key) return Status::InvalidArgument("EC key is not a point on " + crv);
  return key;
}

Result<std::shared_ptr<EVP_PKEY>> OkpKey(const Json& j, const std::string& crv) {
  if (crv != "Ed25519") return Status::InvalidArgument("OKP curve '" + crv + "' is not supported");
  auto x = B64Field(j, "x");
  if (!x || x->size() != 32) return Status::InvalidArgument("Ed25519 key needs a 32-byte x");
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size());
  if (raw == nullptr) return Status::InvalidArgument("Ed25519 key is not valid");
  return std::shared_ptr<EVP_PKEY>(raw, PkeyFree{});
}

// Whether `use` / `key_ops` allow verifying signatures.
bool AllowsVerification(const Json& j) {
  const std::string use = Field(j, "use");
  if (!use.empty() && use != "sig") return false;
  auto ops = j.find("key_ops");
  if (ops == j.end()) return true;
  if (!ops->is_array()) return false;
  for (const auto& op : *ops) {
    if (op.is_string() && op.get<std::string>() == "verify") return true;
  }
  return false;
}

}  // namespace

std::optional<Algorithm> ParseAlgorithm(std::string_view name) {
  for (const auto& a : kAlgorithms) {
    if (name == a.name) return a.alg;
  }
  return std::nullopt;
}

const char* AlgorithmName(Algorithm alg) {
  for (const auto& a : kAlgorithms) {
    if (a.alg == alg) return a.name;
  }
  return "?";
}

std::vector<Algorithm> SupportedAlgorithms() {
  std::vector<Algorithm> all;
  for (const auto& a : kAlgorithms) all.push_back(a.alg);
  return all;
}

bool IsHmacAlgorithmName(std::string_view name) {
  return name == "HS256" || name == "HS384" || name == "HS512";
}

const Jwk* KeySet::FindByKid(std::string_view kid) const {
  for (const auto& k : keys) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

Result<KeySet> ParseJwks(std::string_view text, size_t max_keys) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("JWKS is not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument("JWKS must be a JSON object");
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) {
    return Status::InvalidArgument("JWKS must hold a \"keys\" array");
  }
  if (keys->size() > max_keys) {
    return Status::InvalidArgument("JWKS holds " + std::to_string(keys->size()) +
                                   " keys; at most " + std::to_string(max_keys) + " are accepted");
  }
  KeySet set;
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& j = (*keys)[i];
    if (!j.is_object())
      return Status::InvalidArgument("JWKS keys[" + std::to_string(i) + "] must be an object");
    Jwk key;
    key.kid = Field(j, "kid");
    key.kty = Field(j, "kty");
    key.crv = Field(j, "crv");
    key.alg = Field(j, "alg");
    key.use = Field(j, "use");
    key.for_verification = AllowsVerification(j);
    const std::string name = "keys[" + std::to_string(i) + "] (kid '" + key.kid + "')";
    if (j.contains("d") || j.contains("p") || j.contains("k")) {
      // Private or symmetric material has no place in a published key set.
      set.skipped.push_back(name + ": holds private or symmetric key material");
      continue;
    }
    if (!key.kid.empty() && set.FindByKid(key.kid) != nullptr) {
      set.skipped.push_back(name + ": duplicate kid");
      continue;
    }
    Result<std::shared_ptr<EVP_PKEY>> made =
        Status::InvalidArgument("key type '" + key.kty + "' is not supported");
    if (key.kty == "RSA") {
      made = RsaKey(j);
    } else if (key.kty == "EC") {
      made = EcKey(j, key.crv);
    } else if (key.kty == "OKP") {
      made = OkpKey(j, key.crv);
    }
    if (!made.ok()) {
      set.skipped.push_back(name + ": " + made.status().message());
      continue;
    }
    key.key = std::move(made).value();
    set.keys.push_back(std::move(key));
  }
  return set;
}

std::string KeyMismatch(const Jwk& key, Algorithm alg) {
  if (!key.for_verification) return "key is not published for signature verification";
  if (!key.alg.empty() && key.alg != AlgorithmName(alg)) {
    return "key is for " + key.alg + ", token says " + AlgorithmName(alg);
  }
  switch (alg) {
    case Algorithm::kRS256:
    case Algorithm::kRS384:
    case Algorithm::kRS512:
    case Algorithm::kPS256:
      if (key.kty != "RSA") return "key type " + key.kty + " cannot verify " + AlgorithmName(alg);
      return {};
    case Algorithm::kES256:
      if (key.kty != "EC" || key.crv != "P-256") return "ES256 needs an EC P-256 key";
      return {};
    case Algorithm::kES384:
      if (key.kty != "EC" || key.crv != "P-384") return "ES384 needs an EC P-384 key";
      return {};
    case Algorithm::kEdDSA:
      if (key.kty != "OKP" || key.crv != "Ed25519") return "EdDSA needs an OKP Ed25519 key";
      return {};
  }
  return "unsupported algorithm";
}

}  // namespace airlock::identity::oidc_jwt
