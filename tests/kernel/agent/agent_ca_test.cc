#include "kernel/agent/agent_ca.h"

#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::agent {
namespace {

using test::TempDir;

X509* ParsePem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return cert;
}

// Verifies `leaf` against `ca` as a TLS client certificate would be.
bool VerifiesAsClient(const std::string& leaf_pem, const std::string& ca_pem) {
  X509* leaf = ParsePem(leaf_pem);
  X509* ca = ParsePem(ca_pem);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  const bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(leaf);
  X509_free(ca);
  return ok;
}

int Mode(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 0777;
}

TEST(AgentCa, CreatesItsKeyPrivatelyAndReloadsTheSameCa) {
  TempDir dir("airlock-agent-ca-");
  const std::string ca_dir = dir.path() + "/ca";
  auto ca = AgentCa::OpenOrCreate(ca_dir);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  EXPECT_EQ(Mode(ca_dir + "/ca.key"), 0600);
  EXPECT_EQ(Mode(ca_dir), 0700);
  EXPECT_NE((*ca)->certificate_pem().find("BEGIN CERTIFICATE"), std::string::npos);
  auto again = AgentCa::OpenOrCreate(ca_dir);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->certificate_pem(), (*ca)->certificate_pem());
}

TEST(AgentCa, RefusesAKeyOthersCanReadOrAHalfMissingPair) {
  TempDir dir("airlock-agent-ca-");
  const std::string ca_dir = dir.path() + "/ca";
  ASSERT_TRUE(AgentCa::OpenOrCreate(ca_dir).ok());
  ::chmod((ca_dir + "/ca.key").c_str(), 0644);
  auto loose = AgentCa::OpenOrCreate(ca_dir);
  ASSERT_FALSE(loose.ok());
  EXPECT_EQ(loose.status().code(), StatusCode::kFailedPrecondition);
  ::chmod((ca_dir + "/ca.key").c_str(), 0600);
  std::filesystem::remove(ca_dir + "/ca.crt");
  EXPECT_EQ(AgentCa::OpenOrCreate(ca_dir).status().code(), StatusCode::kFailedPrecondition);
}

TEST(AgentCa, SignsACsrForTheAgentNameOnly) {
  TempDir dir("airlock-agent-ca-");
  auto ca = AgentCa::OpenOrCreate(dir.path() + "/ca");
  ASSERT_TRUE(ca.ok());
  // The CSR asks for another name; the certificate carries the agent's.
  auto request = MakeKeyAndCsr("somebody-else");
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  auto cert = (*ca)->SignClientCsr(request->pem, "edge-1", std::chrono::seconds(120));
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  auto info = InspectCertificate(*cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "edge-1");
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  EXPECT_NEAR(static_cast<double>(info->not_after_s), static_cast<double>(now + 120), 5.0);
  EXPECT_FALSE(info->serial_hex.empty());
  EXPECT_TRUE(VerifiesAsClient(*cert, (*ca)->certificate_pem()));
  // Two certificates never share a serial.
  auto second = (*ca)->SignClientCsr(request->pem, "edge-1", std::chrono::seconds(120));
  ASSERT_TRUE(second.ok());
  EXPECT_NE(InspectCertificate(*second)->serial_hex, info->serial_hex);
}

TEST(AgentCa, AnotherCaDoesNotVouchForItsCertificates) {
  TempDir dir("airlock-agent-ca-");
  auto ca = AgentCa::OpenOrCreate(dir.path() + "/ca");
  auto other = AgentCa::OpenOrCreate(dir.path() + "/other");
  ASSERT_TRUE(ca.ok() && other.ok());
  auto request = MakeKeyAndCsr("edge-1");
  auto cert = (*other)->SignClientCsr(request->pem, "edge-1", std::chrono::seconds(120));
  ASSERT_TRUE(cert.ok());
  EXPECT_FALSE(VerifiesAsClient(*cert, (*ca)->certificate_pem()));
}

TEST(AgentCa, RefusesMalformedOrForgedRequests) {
  TempDir dir("airlock-agent-ca-");
  auto ca = AgentCa::OpenOrCreate(dir.path() + "/ca");
  ASSERT_TRUE(ca.ok());
  EXPECT_EQ((*ca)->SignClientCsr("not a csr", "edge", std::chrono::seconds(60)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      (*ca)->SignClientCsr(std::string(100000, 'A'), "edge", std::chrono::seconds(60)).ok());
  // A CSR whose body was altered after signing fails its signature check.
  auto request = MakeKeyAndCsr("edge");
  ASSERT_TRUE(request.ok());
  BIO* bio = BIO_new_mem_buf(request->pem.data(), static_cast<int>(request->pem.size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(req, nullptr);
  // Swap in another public key without re-signing: the signature no longer matches.
  EVP_PKEY* other_key = EVP_EC_gen("P-256");
  ASSERT_EQ(X509_REQ_set_pubkey(req, other_key), 1);
  EVP_PKEY_free(other_key);
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(out, req);
  char* data = nullptr;
  const long length = BIO_get_mem_data(out, &data);
  const std::string forged(data, static_cast<size_t>(length));
  BIO_free(out);
  X509_REQ_free(req);
  auto refused = (*ca)->SignClientCsr(forged, "edge", std::chrono::seconds(60));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
}

TEST(AgentCa, IssuesServerCertificatesForNamesAndAddresses) {
  TempDir dir("airlock-agent-ca-");
  auto ca = AgentCa::OpenOrCreate(dir.path() + "/ca");
  ASSERT_TRUE(ca.ok());
  auto server =
      (*ca)->IssueServerCertificate({"127.0.0.1", "kernel.internal"}, std::chrono::hours(1));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_NE(server->key_pem.Reveal().find("PRIVATE KEY"), std::string_view::npos);
  X509* cert = ParsePem(server->pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(cert, "kernel.internal", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(cert, "other.internal", 0, 0, nullptr), 1);
  X509_free(cert);
}

TEST(AgentCa, WritesPrivateFilesWithMode0600) {
  TempDir dir("airlock-agent-ca-");
  const std::string path = dir.path() + "/key.pem";
  ASSERT_TRUE(WritePrivateFile(path, "secret").ok());
  EXPECT_EQ(Mode(path), 0600);
  auto read = ReadSmallFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "secret");
  ASSERT_TRUE(WritePrivateFile(path, "replaced").ok());
  EXPECT_EQ(*ReadSmallFile(path), "replaced");
  EXPECT_EQ(ReadSmallFile(dir.path() + "/missing").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace airlock::agent
