// Column masks as a connector applies them before a value leaves it:
// redact ("***"), last4 ("****1234") and hash (hex SHA-256).
//
// LINKING: this header calls OpenSSL's libcrypto (EVP digests). A target that
// includes it links OpenSSL::Crypto besides Airlock::sdk:
//   find_package(OpenSSL REQUIRED)
//   airlock_add_plugin_module(my_connector SOURCES my_connector.cc LIBS OpenSSL::Crypto)
// (or target_link_libraries(my_target PRIVATE Airlock::sdk OpenSSL::Crypto)).
// Code that needs only redact/last4 or the mask names can include scope.hpp,
// which has no such dependency.
//
// About `hash`: it is an unsalted SHA-256 of the value's canonical text
// (scope::AppendText), so equal values hash equally across datasets and
// sources and still join. That is pseudonymisation, not anonymisation:
// values from a small space (a phone number, a birth date) can be recovered
// by hashing every candidate. Use redact where that matters.
//
// A NULL cell stays NULL under every mask. A masked column is delivered as
// utf8 whatever its source type.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::scope {

// Applies masks; holds a reusable digest context, so keep one per pull (or
// per thread) instead of one per value. Not thread-safe.
class Masker {
 public:
  // Fetches SHA-256 once: an implicit fetch per digest (EVP_sha256() in
  // EVP_DigestInit_ex) costs more than hashing a short value.
  Masker() : ctx_(EVP_MD_CTX_new()), md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)) {}

  // Writes the masked text of `value` (its canonical text as the input) to
  // `out`. Returns false when the value is NULL: append a NULL instead.
  bool Mask(MaskFunction fn, const Value& value, std::string* out) {
    if (value.is_null()) return false;
    if (value.type == arrow::Type::kUtf8 || value.type == arrow::Type::kBinary) {
      MaskText(fn, value.s, out);
      return true;
    }
    scratch_.clear();
    AppendText(value, &scratch_);
    MaskText(fn, scratch_, out);
    OPENSSL_cleanse(scratch_.data(), scratch_.size());
    return true;
  }

  // Masks text that is already in canonical form.
  void MaskText(MaskFunction fn, std::string_view text, std::string* out) {
    switch (fn) {
      case MaskFunction::kRedact:
        MaskRedact(out);
        return;
      case MaskFunction::kLast4:
        MaskLast4(text, out);
        return;
      case MaskFunction::kHash:
        HashHex(text, out);
        return;
    }
    MaskRedact(out);  // unreachable for valid enums; never the raw value
  }

  // Lowercase hex SHA-256 of `text` into `out`. On a libcrypto failure (out
  // of memory) the result is "***": still never the raw value.
  void HashHex(std::string_view text, std::string* out) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    const bool ok = ctx_ != nullptr && md_ != nullptr &&
                    EVP_DigestInit_ex(ctx_.get(), md_.get(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx_.get(), text.data(), text.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx_.get(), digest, &length) == 1;
    if (!ok) {
      MaskRedact(out);
      return;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out->resize(static_cast<size_t>(length) * 2);
    for (unsigned int i = 0; i < length; ++i) {
      (*out)[2 * i] = kHex[digest[i] >> 4];
      (*out)[2 * i + 1] = kHex[digest[i] & 0xF];
    }
  }

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  struct MdFree {
    void operator()(EVP_MD* md) const { EVP_MD_free(md); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
  std::unique_ptr<EVP_MD, MdFree> md_;
  std::string scratch_;
};

// Lowercase hex SHA-256 of `value`.
inline std::string MaskHash(std::string_view value) {
  std::string out;
  Masker().HashHex(value, &out);
  return out;
}

// Applies the mask named `function` to text. Unknown names are
// InvalidArgument (fail closed: the raw value is never returned).
inline Result<std::string> ApplyMask(std::string_view function, std::string_view value) {
  AIRLOCK_ASSIGN_OR_RETURN(MaskFunction fn, ParseMaskFunction(function));
  std::string out;
  Masker().MaskText(fn, value, &out);
  return out;
}

}  // namespace airlock::scope
