#include "tests/support/test_pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace airlock::test {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using CertPtr = std::unique_ptr<X509, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;
using BignumPtr = std::unique_ptr<BIGNUM, Free>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Free>;

[[noreturn]] void Fail(const std::string& what) {
  const unsigned long code = ERR_get_error();
  char reason[256] = {0};
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  throw std::runtime_error("test pki: " + what + (code != 0 ? std::string(": ") + reason : ""));
}

void Check(int ok, const std::string& what) {
  if (ok != 1) Fail(what);
}

KeyPtr NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) Fail("generate P-256 key");
  return key;
}

CertPtr LoadCert(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) Fail("open " + path);
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) Fail("read certificate " + path);
  return cert;
}

KeyPtr LoadKey(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) Fail("open " + path);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) Fail("read key " + path);
  return key;
}

void AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) Fail("build extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  Check(X509_add_ext(cert, ext.get(), -1), "add extension");
}

void AddNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  Check(
      X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0),
      std::string("add name entry ") + field);
}

std::string SubjectAltNames(const CertSpec& spec) {
  std::string out;
  auto append = [&out](const char* kind, const std::string& value) {
    if (!out.empty()) out += ',';
    out += kind;
    out += ':';
    out += value;
  };
  for (const auto& v : spec.dns_names) append("DNS", v);
  for (const auto& v : spec.ip_addresses) append("IP", v);
  for (const auto& v : spec.uris) append("URI", v);
  for (const auto& v : spec.emails) append("email", v);
  return out;
}

}  // namespace

CertFiles IssueCertificate(const std::string& dir, const std::string& name, const CertSpec& spec,
                           const CertFiles* issuer) {
  KeyPtr key = NewKey();
  CertPtr issuer_cert;
  KeyPtr issuer_key;
  if (issuer != nullptr) {
    issuer_cert = LoadCert(issuer->cert_file);
    issuer_key = LoadKey(issuer->key_file);
  }

  CertPtr cert(X509_new());
  if (!cert) Fail("allocate certificate");
  Check(X509_set_version(cert.get(), X509_VERSION_3), "set version");
  BignumPtr serial(BN_new());
  if (!serial) Fail("allocate serial");
  Check(BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "random serial");
  if (BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    Fail("set serial");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before.count()) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after.count()) == nullptr) {
    Fail("set validity");
  }
  Check(X509_set_pubkey(cert.get(), key.get()), "set public key");

  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!spec.organization.empty()) AddNameEntry(subject, "O", spec.organization);
  for (const auto& unit : spec.organizational_units) AddNameEntry(subject, "OU", unit);
  AddNameEntry(subject, "CN", spec.common_name);
  Check(X509_set_issuer_name(cert.get(),
                             issuer_cert ? X509_get_subject_name(issuer_cert.get()) : subject),
        "set issuer name");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert.get() : cert.get(), cert.get(), nullptr, nullptr,
                 0);
  AddExtension(cert.get(), &ctx, NID_basic_constraints,
               spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  AddExtension(cert.get(), &ctx, NID_key_usage,
               spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  std::string usages;
  if (spec.server_auth) usages = "serverAuth";
  if (spec.client_auth) usages += usages.empty() ? "clientAuth" : ",clientAuth";
  if (!usages.empty()) AddExtension(cert.get(), &ctx, NID_ext_key_usage, usages);
  AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (issuer_cert) AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  const std::string sans = SubjectAltNames(spec);
  if (!sans.empty()) AddExtension(cert.get(), &ctx, NID_subject_alt_name, sans);

  if (X509_sign(cert.get(), issuer_key ? issuer_key.get() : key.get(), EVP_sha256()) <= 0) {
    Fail("sign certificate " + name);
  }

  CertFiles files{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  {
    BioPtr out(BIO_new_file(files.key_file.c_str(), "w"));
    if (!out) Fail("create " + files.key_file);
    Check(PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr),
          "write key");
  }
  ::chmod(files.key_file.c_str(), 0600);
  {
    BioPtr out(BIO_new_file(files.cert_file.c_str(), "w"));
    if (!out) Fail("create " + files.cert_file);
    Check(PEM_write_bio_X509(out.get(), cert.get()), "write certificate");
  }
  return files;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test pki: cannot read " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string WriteChainFile(const std::string& dir, const std::string& name,
                           const std::vector<std::string>& pem_files) {
  const std::string path = dir + "/" + name + ".pem";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& file : pem_files) out << ReadFile(file);
  if (!out) throw std::runtime_error("test pki: cannot write " + path);
  return path;
}

TestPki GenerateTestPki(const std::string& dir) {
  TestPki pki;
  CertSpec ca_spec;
  ca_spec.common_name = "Airlock Test CA";
  ca_spec.organization = "Airlock Tests";
  ca_spec.is_ca = true;
  ca_spec.not_after = std::chrono::hours(24 * 365);
  pki.ca = IssueCertificate(dir, "ca", ca_spec);

  CertSpec server_spec;
  server_spec.common_name = "localhost";
  server_spec.dns_names = {"localhost"};
  server_spec.ip_addresses = {"127.0.0.1", "::1"};
  server_spec.server_auth = true;
  pki.server = IssueCertificate(dir, "server", server_spec, &pki.ca);

  CertSpec client_spec;
  client_spec.common_name = "test-client";
  client_spec.organization = "Airlock Tests";
  client_spec.organizational_units = {"testers"};
  client_spec.emails = {"test-client@example.test"};
  client_spec.client_auth = true;
  pki.client = IssueCertificate(dir, "client", client_spec, &pki.ca);

  CertSpec expired_spec = client_spec;
  expired_spec.common_name = "expired-client";
  expired_spec.emails.clear();
  expired_spec.not_before = -std::chrono::hours(48);
  expired_spec.not_after = -std::chrono::hours(24);
  pki.expired_client = IssueCertificate(dir, "expired-client", expired_spec, &pki.ca);

  CertSpec other_ca_spec = ca_spec;
  other_ca_spec.common_name = "Unrelated Test CA";
  pki.other_ca = IssueCertificate(dir, "other-ca", other_ca_spec);

  CertSpec foreign_spec = client_spec;
  foreign_spec.common_name = "foreign-client";
  foreign_spec.emails.clear();
  pki.foreign_client = IssueCertificate(dir, "foreign-client", foreign_spec, &pki.other_ca);

  pki.client_chain_file =
      WriteChainFile(dir, "client-chain", {pki.client.cert_file, pki.ca.cert_file});
  return pki;
}

}  // namespace airlock::test
