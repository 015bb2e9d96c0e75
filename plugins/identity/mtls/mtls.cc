#include "mtls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::identity::mtls {
namespace {

constexpr size_t kMaxSubjectBytes = 1024;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_pop_free(stack, X509_free); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* ctx) const { X509_STORE_CTX_free(ctx); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};
struct ClearOpensslErrors {
  ~ClearOpensslErrors() { ERR_clear_error(); }
};

Status Refuse(const char* code, const std::string& detail) {
  return Status::Unauthenticated(std::string(code) + ": " + detail);
}

// Certificates of a PEM chain, leaf first; empty when none parses.
Result<std::vector<std::unique_ptr<X509, X509Free>>> ParseChain(std::string_view pem,
                                                                size_t max_certificates) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Internal("out of memory");
  std::vector<std::unique_ptr<X509, X509Free>> chain;
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    chain.emplace_back(cert);
    if (chain.size() > max_certificates) {
      return Refuse(kMalformed, "the client sent more than " + std::to_string(max_certificates) +
                                    " certificates");
    }
  }
  const unsigned long error = ERR_peek_last_error();
  if (chain.empty() || (error != 0 && !(ERR_GET_LIB(error) == ERR_LIB_PEM &&
                                        ERR_GET_REASON(error) == PEM_R_NO_START_LINE))) {
    return Refuse(kMalformed, "the client certificate chain is not valid PEM");
  }
  return chain;
}

Status FromVerifyError(int error, int depth) {
  const std::string where =
      depth == 0 ? "client certificate" : "certificate at chain depth " + std::to_string(depth);
  const std::string text = X509_verify_cert_error_string(error);
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return Refuse(kExpired, where + " has expired");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Refuse(kNotYetValid, where + " is not valid yet");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return Refuse(kUntrustedIssuer, where + " does not chain to a trusted CA (" + text + ")");
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
      return Refuse(kWrongKeyUsage, where + " is not usable for TLS client authentication");
    default:
      return Refuse(kInvalid, where + ": " + text);
  }
}

std::string Utf8(const ASN1_STRING* value) {
  unsigned char* out = nullptr;
  const int length = ASN1_STRING_to_UTF8(&out, value);
  if (length < 0) return {};
  std::string text(reinterpret_cast<const char*>(out), static_cast<size_t>(length));
  OPENSSL_free(out);
  // An embedded NUL could make two different names look alike.
  if (text.find('\0') != std::string::npos) return {};
  return text;
}

// Candidate subject values of the configured source, in certificate order.
std::vector<std::string> SubjectValues(X509* leaf, SubjectSource source) {
  std::vector<std::string> values;
  if (source == SubjectSource::kCommonName) {
    X509_NAME* name = X509_get_subject_name(leaf);
    int index = -1;
    int last = -1;
    while ((index = X509_NAME_get_index_by_NID(name, NID_commonName, index)) >= 0) last = index;
    if (last >= 0) {
      values.push_back(Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last))));
    }
    return values;
  }
  const int type = source == SubjectSource::kSanUri   ? GEN_URI
                   : source == SubjectSource::kSanDns ? GEN_DNS
                                                      : GEN_EMAIL;
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != type) continue;
    values.push_back(Utf8(name->d.ia5));
  }
  return values;
}

std::string Sha256Hex(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &length) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xF]);
  }
  return hex;
}

}  // namespace

Result<std::unique_ptr<Mtls>> Mtls::Create(const Json& config, const sdk::Host& host) {
  ClearOpensslErrors clear_errors;
  AIRLOCK_ASSIGN_OR_RETURN(MtlsConfig parsed, ParseConfig(config, host));
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  if (!store) return Status::Internal("out of memory");
  if (X509_STORE_load_file(store.get(), parsed.ca_file.c_str()) != 1) {
    return Status::InvalidArgument("ca_file: cannot load CA certificates from " + parsed.ca_file);
  }
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store.get());
  if (objects == nullptr || sk_X509_OBJECT_num(objects) == 0) {
    return Status::InvalidArgument("ca_file " + parsed.ca_file + " holds no certificate");
  }
  host.Info("trusting " + std::to_string(sk_X509_OBJECT_num(objects)) + " CA certificate(s) from " +
            parsed.ca_file);
  return std::unique_ptr<Mtls>(new Mtls(std::move(parsed), host, std::move(store)));
}

Mtls::~Mtls() = default;

int64_t Mtls::NowSeconds() const {
  const int64_t host_now = host_.NowMicros();
  if (host_now != 0) return host_now / 1000000;
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<Principal> Mtls::Authenticate(const sdk::HttpRequestView& request) {
  if (request.peer_certificate_pem.empty()) {
    return Status::NotApplicable("no client certificate was presented");
  }
  ClearOpensslErrors clear_errors;
  ERR_clear_error();  // ParseChain reads the queue to tell EOF from garbage
  if (request.peer_certificate_pem.size() > config_.max_pem_bytes) {
    return Refuse(kMalformed, "the client certificate chain exceeds " +
                                  std::to_string(config_.max_pem_bytes) + " bytes");
  }
  AIRLOCK_ASSIGN_OR_RETURN(
      auto chain, ParseChain(request.peer_certificate_pem, config_.max_chain_certificates));
  X509* leaf = chain.front().get();
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  if (!untrusted) return Status::Internal("out of memory");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].get()) <= 0)
      return Status::Internal("out of memory");
    X509_up_ref(chain[i].get());
  }

  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), leaf, untrusted.get()) != 1) {
    return Status::Internal("cannot set up certificate verification");
  }
  // Purpose sslclient: the leaf's extendedKeyUsage (if any) must allow
  // clientAuth and its keyUsage (if any) digital signatures.
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(NowSeconds()));
  X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx.get()),
                              static_cast<int>(config_.max_chain_certificates));
  if (X509_verify_cert(ctx.get()) != 1) {
    return FromVerifyError(X509_STORE_CTX_get_error(ctx.get()),
                           X509_STORE_CTX_get_error_depth(ctx.get()));
  }

  // The purpose check lets a certificate without extendedKeyUsage pass;
  // a client identity must say it is one.
  const uint32_t flags = X509_get_extension_flags(leaf);
  if (config_.require_client_auth_eku &&
      (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT))) {
    return Refuse(kWrongKeyUsage, "client certificate does not list extendedKeyUsage clientAuth");
  }
  if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
    return Refuse(kWrongKeyUsage, "client certificate keyUsage lacks digitalSignature");
  }

  std::string subject;
  for (std::string& value : SubjectValues(leaf, config_.subject_from)) {
    if (value.empty() || value.size() > kMaxSubjectBytes) continue;
    if (!config_.subject_prefix.empty()) {
      if (value.rfind(config_.subject_prefix, 0) != 0) continue;
      value.erase(0, config_.subject_prefix.size());
      if (value.empty()) continue;
    }
    subject = std::move(value);
    break;
  }
  if (subject.empty()) {
    return Refuse(kNoSubject,
                  "client certificate carries no usable subject of the configured type");
  }

  Principal p;
  p.subject = subject;
  p.kind = config_.kind;
  p.groups = config_.groups;
  p.tenant = config_.tenant;
  for (const auto& mapping : config_.mappings) {
    if (!GlobMatch(mapping.pattern, subject)) continue;
    if (mapping.kind) p.kind = *mapping.kind;
    if (mapping.groups) p.groups = *mapping.groups;
    if (mapping.tenant) p.tenant = *mapping.tenant;
    break;
  }
  p.attributes["certificate_sha256"] = Sha256Hex(leaf);
  return p;
}

}  // namespace airlock::identity::mtls
