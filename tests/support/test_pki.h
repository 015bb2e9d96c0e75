// Test certificates made on the fly with OpenSSL 3 (P-256 keys, SHA-256
// signatures), written as PEM files into a directory the test owns. Failures
// throw std::runtime_error: these are test fixtures, a failure is a broken test.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace airlock::test {

// A certificate and its unencrypted private key, as PEM file paths.
struct CertFiles {
  std::string cert_file;
  std::string key_file;
};

struct CertSpec {
  std::string common_name;
  std::vector<std::string> organizational_units;  // OU entries, in order
  std::string organization;                       // O, when not empty
  std::vector<std::string> dns_names;             // SAN DNS
  std::vector<std::string> ip_addresses;          // SAN IP
  std::vector<std::string> uris;                  // SAN URI (e.g. spiffe://...)
  std::vector<std::string> emails;                // SAN email
  bool is_ca = false;
  bool server_auth = false;  // extendedKeyUsage serverAuth
  bool client_auth = false;  // extendedKeyUsage clientAuth
  // Validity relative to now.
  std::chrono::seconds not_before = -std::chrono::hours(1);
  std::chrono::seconds not_after = std::chrono::hours(24 * 30);
};

// Creates a key and a certificate for `spec` as <dir>/<name>.crt and
// <dir>/<name>.key, signed by `issuer` (a CA made here), or self-signed when
// issuer is null.
CertFiles IssueCertificate(const std::string& dir, const std::string& name, const CertSpec& spec,
                           const CertFiles* issuer = nullptr);

// Writes the concatenation of PEM files (leaf first) to <dir>/<name>.pem.
std::string WriteChainFile(const std::string& dir, const std::string& name,
                           const std::vector<std::string>& pem_files);

// The set most TLS tests need.
struct TestPki {
  CertFiles ca;                   // "Airlock Test CA"
  CertFiles server;               // CN localhost; SAN DNS localhost, IP 127.0.0.1 and ::1
  CertFiles client;               // CN test-client, OU testers, clientAuth, valid now
  CertFiles expired_client;       // CN expired-client, expired a day ago
  CertFiles other_ca;             // an unrelated CA
  CertFiles foreign_client;       // CN foreign-client, signed by other_ca
  std::string client_chain_file;  // client leaf followed by the CA certificate
};

TestPki GenerateTestPki(const std::string& dir);

// The contents of a file (for comparing PEM text with what a server saw).
std::string ReadFile(const std::string& path);

}  // namespace airlock::test
