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

#include "airlock/cpp/x509_mint.hpp"
#include "kernel/common/crypto.h"

namespace airlock::agent {
namespace {

namespace fs = std::filesystem;
namespace mint = sdk::x509_mint;

using mint::CertPtr;
using mint::KeyPtr;
using mint::detail::OpenSslError;
using BioPtr = std::unique_ptr<BIO, mint::detail::Free>;
using ReqPtr = std::unique_ptr<X509_REQ, mint::detail::Free>;
using BignumPtr = std::unique_ptr<BIGNUM, mint::detail::Free>;

constexpr size_t kMaxPemBytes = 64 * 1024;

BioPtr MemoryBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

Result<Secret> KeyPem(EVP_PKEY* key) {
  AIRLOCK_ASSIGN_OR_RETURN(mint::KeyPem pem, mint::PrivateKeyPem(key));
  return Secret(std::string(pem.view()));
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

Status SetName(X509_NAME* name, const std::string& common_name) {
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return OpenSslError("set subject");
  }
  return Status::Ok();
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
  AIRLOCK_ASSIGN_OR_RETURN(impl->cert,
                           mint::NewCertificate(impl->key.get(), "Airlock agent CA", nullptr,
                                                std::chrono::hours(24 * 3650)));
  AIRLOCK_RETURN_IF_ERROR(mint::FinishAuthority(impl->cert.get(), impl->key.get()));
  AIRLOCK_ASSIGN_OR_RETURN(Secret key_pem, KeyPem(impl->key.get()));
  AIRLOCK_RETURN_IF_ERROR(WritePrivateFile(key_file, key_pem.Reveal()));
  AIRLOCK_ASSIGN_OR_RETURN(std::string cert_pem, mint::CertificatePem(impl->cert.get()));
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
  AIRLOCK_ASSIGN_OR_RETURN(
      CertPtr cert, mint::NewCertificate(public_key, common_name, impl_->cert.get(), lifetime));
  AIRLOCK_RETURN_IF_ERROR(
      mint::FinishLeaf(cert.get(), impl_->cert.get(), impl_->key.get(), mint::Usage::kClient, {}));
  return mint::CertificatePem(cert.get());
}

Result<KeyAndPem> AgentCa::IssueServerCertificate(const std::vector<std::string>& names,
                                                  std::chrono::seconds lifetime) const {
  if (names.empty()) return Status::InvalidArgument("a server certificate needs a name");
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generate key");
  AIRLOCK_ASSIGN_OR_RETURN(
      CertPtr cert, mint::NewCertificate(key.get(), names.front(), impl_->cert.get(), lifetime));
  AIRLOCK_RETURN_IF_ERROR(mint::FinishLeaf(cert.get(), impl_->cert.get(), impl_->key.get(),
                                           mint::Usage::kServer, names));
  KeyAndPem out;
  AIRLOCK_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  AIRLOCK_ASSIGN_OR_RETURN(out.pem, mint::CertificatePem(cert.get()));
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
  result.pem = mint::detail::BioText(out.get());
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
