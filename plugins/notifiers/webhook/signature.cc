#include "webhook/signature.h"

#include <array>
#include <memory>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/text_util.h"

namespace airlock::notifiers::webhook {
namespace {

struct MacDeleter {
  void operator()(EVP_MAC* mac) const { EVP_MAC_free(mac); }
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

}  // namespace

Result<std::string> SignatureHeaderValue(std::string_view secret, int64_t unix_seconds,
                                         std::string_view body) {
  if (secret.empty()) return Status::InvalidArgument("the webhook secret is empty");
  const std::string t = std::to_string(unix_seconds);
  std::unique_ptr<EVP_MAC, MacDeleter> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return Status::Internal("HMAC is not available");
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return Status::Internal("out of memory");
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_END};
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  size_t length = 0;
  // The context keeps its own copy of the key and cleanses it when freed.
  const bool ok =
      EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                   params) == 1 &&
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(t.data()), t.size()) == 1 &&
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>("."), 1) == 1 &&
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(body.data()), body.size()) ==
          1 &&
      EVP_MAC_final(ctx.get(), out.data(), &length, out.size()) == 1;
  if (!ok) return Status::Internal("HMAC-SHA256 failed");
  std::string value =
      "t=" + t + ",v1=" + Hex(std::string_view(reinterpret_cast<const char*>(out.data()), length));
  OPENSSL_cleanse(out.data(), out.size());
  return value;
}

}  // namespace airlock::notifiers::webhook
