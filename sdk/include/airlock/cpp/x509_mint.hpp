// Minting X.509 certificates with OpenSSL 3 for links a plugin runs itself
// (an isolator's enclave link, a private authority kept in memory): P-256
// keys, SHA-256 signatures, a CA that signs serverAuth and clientAuth leaves
// with IP or DNS subject alternative names. Header-only; link OpenSSL::Crypto.
//
//   auto ca = x509_mint::Authority::Create("Airlock enclave link CA", std::chrono::hours(24 * 30));
//   auto server = ca->Issue("kernel", {"10.0.0.5"}, x509_mint::Usage::kServer, lifetime);
//   auto client = ca->Issue("enclave-r-123", {}, x509_mint::Usage::kClient, lifetime);
#pragma once

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::sdk::x509_mint {

namespace detail {
struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};

inline Status OpenSslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  char reason[256] = {0};
  if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
  ERR_clear_error();
  return Status::Internal(what + (code != 0 ? std::string(": ") + reason : ""));
}

inline std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

inline bool IsIpLiteral(const std::string& name) {
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

inline Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return OpenSslError("add extension");
  return Status::Ok();
}
}  // namespace detail

using KeyPtr = std::unique_ptr<EVP_PKEY, detail::Free>;
using CertPtr = std::unique_ptr<X509, detail::Free>;

enum class Usage { kServer, kClient };

// A private key in PEM, wiped when destroyed.
class KeyPem {
 public:
  KeyPem() = default;
  explicit KeyPem(std::string text) : text_(std::move(text)) {}
  KeyPem(KeyPem&& other) noexcept : text_(std::move(other.text_)) { other.Wipe(); }
  KeyPem& operator=(KeyPem&& other) noexcept {
    Wipe();
    text_ = std::move(other.text_);
    other.Wipe();
    return *this;
  }
  KeyPem(const KeyPem&) = delete;
  KeyPem& operator=(const KeyPem&) = delete;
  ~KeyPem() { Wipe(); }
  std::string_view view() const { return text_; }

 private:
  void Wipe() {
    if (!text_.empty()) OPENSSL_cleanse(text_.data(), text_.size());
    text_.clear();
  }
  std::string text_;
};

struct Issued {
  std::string certificate_pem;
  KeyPem key_pem;
  std::string sha256_hex;  // of the DER certificate: what a peer presents
};

inline Result<std::string> CertificatePem(X509* cert) {
  std::unique_ptr<BIO, detail::Free> out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert) != 1) {
    return detail::OpenSslError("write certificate");
  }
  return detail::BioText(out.get());
}

inline Result<KeyPem> PrivateKeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, detail::Free> out(BIO_new(BIO_s_mem()));
  if (!out ||
      PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return detail::OpenSslError("write private key");
  }
  std::string text = detail::BioText(out.get());
  KeyPem pem(std::move(text));
  return pem;
}

// Lower-case hex SHA-256 of a certificate's DER encoding.
inline std::string Sha256Hex(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &length) != 1) return "";
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

// A certificate skeleton: v3, random 127-bit serial, valid from a minute ago
// for `lifetime`, the subject's key and CN, the issuer's name (or its own).
inline Result<CertPtr> NewCertificate(EVP_PKEY* subject_key, const std::string& common_name,
                                      X509* issuer, std::chrono::seconds lifetime) {
  CertPtr cert(X509_new());
  std::unique_ptr<BIGNUM, detail::Free> serial(BN_new());
  if (!cert || !serial) return detail::OpenSslError("allocate certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), lifetime.count()) == nullptr ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return detail::OpenSslError("build certificate");
  }
  if (X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return detail::OpenSslError("set subject");
  }
  if (X509_set_issuer_name(cert.get(), issuer != nullptr
                                           ? X509_get_subject_name(issuer)
                                           : X509_get_subject_name(cert.get())) != 1) {
    return detail::OpenSslError("set issuer");
  }
  return cert;
}

// Adds the leaf extensions for `usage` and `names` (IP literals become IP
// SANs, the rest DNS SANs) and signs with the issuer's key.
inline Status FinishLeaf(X509* cert, X509* issuer, EVP_PKEY* issuer_key, Usage usage,
                         const std::vector<std::string>& names) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  AIRLOCK_RETURN_IF_ERROR(
      detail::AddExtension(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  AIRLOCK_RETURN_IF_ERROR(
      detail::AddExtension(cert, &ctx, NID_key_usage, "critical,digitalSignature"));
  AIRLOCK_RETURN_IF_ERROR(detail::AddExtension(
      cert, &ctx, NID_ext_key_usage, usage == Usage::kServer ? "serverAuth" : "clientAuth"));
  if (!names.empty()) {
    std::string alt;
    for (const auto& name : names) {
      if (!alt.empty()) alt += ",";
      alt += (detail::IsIpLiteral(name) ? "IP:" : "DNS:") + name;
    }
    AIRLOCK_RETURN_IF_ERROR(detail::AddExtension(cert, &ctx, NID_subject_alt_name, alt));
  }
  AIRLOCK_RETURN_IF_ERROR(
      detail::AddExtension(cert, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) return detail::OpenSslError("sign");
  return Status::Ok();
}

// Makes `cert` (from NewCertificate, self-issued) a CA for one level of
// leaves, and self-signs it with `key`.
inline Status FinishAuthority(X509* cert, EVP_PKEY* key) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  AIRLOCK_RETURN_IF_ERROR(
      detail::AddExtension(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  AIRLOCK_RETURN_IF_ERROR(
      detail::AddExtension(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  AIRLOCK_RETURN_IF_ERROR(detail::AddExtension(cert, &ctx, NID_subject_key_identifier, "hash"));
  if (X509_sign(cert, key, EVP_sha256()) <= 0) return detail::OpenSslError("self-sign the CA");
  return Status::Ok();
}

// A certificate authority held in memory only.
class Authority {
 public:
  static Result<std::unique_ptr<Authority>> Create(const std::string& common_name,
                                                   std::chrono::seconds lifetime) {
    auto ca = std::unique_ptr<Authority>(new Authority());
    ca->key_.reset(EVP_EC_gen("P-256"));
    if (!ca->key_) return detail::OpenSslError("generate CA key");
    AIRLOCK_ASSIGN_OR_RETURN(ca->cert_,
                             NewCertificate(ca->key_.get(), common_name, nullptr, lifetime));
    AIRLOCK_RETURN_IF_ERROR(FinishAuthority(ca->cert_.get(), ca->key_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(ca->pem_, CertificatePem(ca->cert_.get()));
    return ca;
  }

  const std::string& certificate_pem() const { return pem_; }

  // A fresh key and a certificate for it, signed by this authority.
  Result<Issued> Issue(const std::string& common_name, const std::vector<std::string>& names,
                       Usage usage, std::chrono::seconds lifetime) const {
    KeyPtr key(EVP_EC_gen("P-256"));
    if (!key) return detail::OpenSslError("generate key");
    AIRLOCK_ASSIGN_OR_RETURN(CertPtr cert,
                             NewCertificate(key.get(), common_name, cert_.get(), lifetime));
    AIRLOCK_RETURN_IF_ERROR(FinishLeaf(cert.get(), cert_.get(), key_.get(), usage, names));
    Issued issued;
    AIRLOCK_ASSIGN_OR_RETURN(issued.certificate_pem, CertificatePem(cert.get()));
    AIRLOCK_ASSIGN_OR_RETURN(issued.key_pem, PrivateKeyPem(key.get()));
    issued.sha256_hex = Sha256Hex(cert.get());
    return issued;
  }

 private:
  Authority() = default;
  KeyPtr key_;
  CertPtr cert_;
  std::string pem_;
};

}  // namespace airlock::sdk::x509_mint
