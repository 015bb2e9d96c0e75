#include "kernel/agent/agent_ca.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kernel/common/crypto.h"

namespace airlock::agent {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(ASN1_TIME* p) const { ASN1_TIME_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using CertPtr = std::unique_ptr<X509, Free>;
using ReqPtr = std::unique_ptr<X509_REQ, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;
using BignumPtr = std::unique_ptr<BIGNUM, Free>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Free>;

constexpr size_t kMaxPemBytes = 64 * 1024;

Status OpenSslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  char reason[256] = {0};
  if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
  ERR_clear_error();
  return Status::Internal(what + (code != 0 ? std::string(": ") + reason : ""));
}

BioPtr MemoryBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

Result<std::string> CertPem(X509* cert) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert) != 1) return OpenSslError("write certificate");
  return BioText(out.get());
}

Result<Secret> KeyPem(EVP_PKEY* key) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out ||
      PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("write private key");
  }
  std::string text = BioText(out.get());
  return Secret(std::move(text));
}

Result<CertPtr> ParseCert(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return Status::InvalidArgument("certificate is too large");
  BioPtr bio = MemoryBio(pem);
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return Status::InvalidArgument("not a PEM certificate");
  }
  return cert;
}

Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return OpenSslError("add extension");
  return Status::Ok();
}

Status SetName(X509_NAME* name, const std::string& common_name) {
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return OpenSslError("set subject");
  }
  return Status::Ok();
}

// A certificate skeleton: version, random serial, validity, key, subject, issuer.
Result<CertPtr> NewCertificate(EVP_PKEY* subject_key, const std::string& common_name, X509* issuer,
                               std::chrono::seconds lifetime) {
  CertPtr cert(X509_new());
  BignumPtr serial(BN_new());
  if (!cert || !serial) return OpenSslError("allocate certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), lifetime.count()) == nullptr ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return OpenSslError("build certificate");
  }
  AIRLOCK_RETURN_IF_ERROR(SetName(X509_get_subject_name(cert.get()), common_name));
  if (X509_set_issuer_name(cert.get(), issuer != nullptr
                                           ? X509_get_subject_name(issuer)
                                           : X509_get_subject_name(cert.get())) != 1) {
    return OpenSslError("set issuer");
  }
  return cert;
}

bool IsIpLiteral(const std::string& name) {
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

int64_t AsnTimeToUnix(const ASN1_TIME* time) {
  struct tm parts {};
  if (ASN1_TIME_to_tm(time, &parts) != 1) return 0;
  return static_cast<int64_t>(timegm(&parts));
}

}  // namespace

struct AgentCa::Impl {
  KeyPtr key;
  CertPtr cert;
};

AgentCa::AgentCa(std::unique_ptr<Impl> impl, std::string dir, std::string pem)
    : impl_(std::move(impl)), dir_(std::move(dir)), certificate_pem_(std::move(pem)) {}
AgentCa::~AgentCa() = default;

Result<std::unique_ptr<AgentCa>> AgentCa::OpenOrCreate(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::FailedPrecondition("cannot create the agent CA directory " + dir);
  ::chmod(dir.c_str(), 0700);
  const std::string key_file = dir + "/ca.key";
  const std::string cert_file = dir + "/ca.crt";
  const bool has_key = fs::exists(key_file), has_cert = fs::exists(cert_file);
  auto impl = std::make_unique<Impl>();
  if (has_key != has_cert) {
    return Status::FailedPrecondition("agent CA: " + std::string(has_key ? cert_file : key_file) +
                                      " is missing (restore it or remove both files)");
  }
  if (has_key) {
    struct stat st {};
    if (::stat(key_file.c_str(), &st) != 0 || (st.st_mode & 077) != 0) {
      return Status::FailedPrecondition("agent CA: " + key_file +
                                        " must not be readable by group or others (mode 0600)");
    }
    AIRLOCK_ASSIGN_OR_RETURN(std::string key_text, ReadSmallFile(key_file));
    Secret key_secret(std::move(key_text));
    BioPtr bio = MemoryBio(key_secret.Reveal());
    impl->key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!impl->key) return OpenSslError("agent CA: reading " + key_file);
    AIRLOCK_ASSIGN_OR_RETURN(std::string cert_text, ReadSmallFile(cert_file));
    AIRLOCK_ASSIGN_OR_RETURN(impl->cert, ParseCert(cert_text));
    if (X509_check_private_key(impl->cert.get(), impl->key.get()) != 1) {
      return Status::FailedPrecondition("agent CA: " + cert_file + " does not match " + key_file);
    }
    return std::unique_ptr<AgentCa>(new AgentCa(std::move(impl), dir, std::move(cert_text)));
  }
  impl->key.reset(EVP_EC_gen("P-256"));
  if (!impl->key) return OpenSslError("agent CA: generate key");
  AIRLOCK_ASSIGN_OR_RETURN(impl->cert, NewCertificate(impl->key.get(), "Airlock agent CA", nullptr,
                                                      std::chrono::hours(24 * 3650)));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, impl->cert.get(), impl->cert.get(), nullptr, nullptr, 0);
  AIRLOCK_RETURN_IF_ERROR(
      AddExtension(impl->cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  AIRLOCK_RETURN_IF_ERROR(
      AddExtension(impl->cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  AIRLOCK_RETURN_IF_ERROR(AddExtension(impl->cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  if (X509_sign(impl->cert.get(), impl->key.get(), EVP_sha256()) <= 0) {
    return OpenSslError("agent CA: self-sign");
  }
  AIRLOCK_ASSIGN_OR_RETURN(Secret key_pem, KeyPem(impl->key.get()));
  AIRLOCK_RETURN_IF_ERROR(WritePrivateFile(key_file, key_pem.Reveal()));
  AIRLOCK_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(impl->cert.get()));
  std::ofstream(cert_file, std::ios::trunc) << cert_pem;
  return std::unique_ptr<AgentCa>(new AgentCa(std::move(impl), dir, std::move(cert_pem)));
}

Result<std::string> AgentCa::SignClientCsr(std::string_view csr_pem, const std::string& common_name,
                                           std::chrono::seconds lifetime) const {
  if (csr_pem.size() > kMaxPemBytes) return Status::InvalidArgument("CSR is too large");
  BioPtr bio = MemoryBio(csr_pem);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    ERR_clear_error();
    return Status::InvalidArgument("not a PEM certificate signing request");
  }
  EVP_PKEY* public_key = X509_REQ_get0_pubkey(req.get());
  if (public_key == nullptr || X509_REQ_verify(req.get(), public_key) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the CSR's signature does not verify");
  }
  AIRLOCK_ASSIGN_OR_RETURN(CertPtr cert,
                           NewCertificate(public_key, common_name, impl_->cert.get(), lifetime));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, impl_->cert.get(), cert.get(), nullptr, nullptr, 0);
  AIRLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  AIRLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  AIRLOCK_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_ext_key_usage, "clientAuth"));
  AIRLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), impl_->key.get(), EVP_sha256()) <= 0) {
    return OpenSslError("sign agent certificate");
  }
  return CertPem(cert.get());
}

Result<KeyAndPem> AgentCa::IssueServerCertificate(const std::vector<std::string>& names,
                                                  std::chrono::seconds lifetime) const {
  if (names.empty()) return Status::InvalidArgument("a server certificate needs a name");
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generate key");
  AIRLOCK_ASSIGN_OR_RETURN(CertPtr cert,
                           NewCertificate(key.get(), names.front(), impl_->cert.get(), lifetime));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, impl_->cert.get(), cert.get(), nullptr, nullptr, 0);
  std::string sans;
  for (const auto& name : names) {
    if (!sans.empty()) sans += ',';
    sans += (IsIpLiteral(name) ? "IP:" : "DNS:") + name;
  }
  AIRLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  AIRLOCK_RETURN_IF_ERROR(
      AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  AIRLOCK_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth"));
  AIRLOCK_RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_alt_name, sans));
  if (X509_sign(cert.get(), impl_->key.get(), EVP_sha256()) <= 0) {
    return OpenSslError("sign server certificate");
  }
  KeyAndPem out;
  AIRLOCK_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  AIRLOCK_ASSIGN_OR_RETURN(out.pem, CertPem(cert.get()));
  return out;
}

Result<KeyAndPem> MakeKeyAndCsr(const std::string& common_name) {
  KeyPtr key(EVP_EC_gen("P-256"));
  ReqPtr req(X509_REQ_new());
  if (!key || !req) return OpenSslError("generate key");
  if (X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return OpenSslError("build CSR");
  }
  AIRLOCK_RETURN_IF_ERROR(SetName(X509_REQ_get_subject_name(req.get()), common_name));
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) return OpenSslError("sign CSR");
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_REQ(out.get(), req.get()) != 1) return OpenSslError("write CSR");
  KeyAndPem result;
  AIRLOCK_ASSIGN_OR_RETURN(result.key_pem, KeyPem(key.get()));
  result.pem = BioText(out.get());
  return result;
}

Result<CertificateInfo> InspectCertificate(std::string_view pem) {
  AIRLOCK_ASSIGN_OR_RETURN(CertPtr cert, ParseCert(pem));
  CertificateInfo info;
  char cn[256] = {0};
  const int length =
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  if (length > 0) info.common_name.assign(cn, static_cast<size_t>(length));
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn) {
    char* hex = BN_bn2hex(bn.get());
    if (hex != nullptr) {
      info.serial_hex = hex;
      OPENSSL_free(hex);
    }
  }
  info.not_before_s = AsnTimeToUnix(X509_get0_notBefore(cert.get()));
  info.not_after_s = AsnTimeToUnix(X509_get0_notAfter(cert.get()));
  return info;
}

Status WritePrivateFile(const std::string& path, std::string_view contents) {
  const std::string temp = path + ".tmp";
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status::FailedPrecondition("cannot create " + temp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(temp.c_str());
      return Status::FailedPrecondition("cannot write " + temp);
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    return Status::FailedPrecondition("cannot replace " + path);
  }
  return Status::Ok();
}

Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::string out;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    out.append(buffer, static_cast<size_t>(in.gcount()));
    if (out.size() > (1u << 20)) return Status::InvalidArgument(path + " is larger than 1 MiB");
  }
  return out;
}

}  // namespace airlock::agent
