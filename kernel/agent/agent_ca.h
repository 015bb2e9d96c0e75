// The kernel-managed certificate authority for agent links, and the X.509
// helpers both ends of a link need (OpenSSL 3, P-256 keys, SHA-256).
//
// The CA key lives in the CA directory as ca.key (mode 0600, directory 0700)
// next to ca.crt; operators hand ca.crt to agents so they can verify the
// kernel. Agent certificates carry the agent's name as their only subject
// (CN) and clientAuth; the kernel's link certificate carries serverAuth and
// the configured server names.
// Thread-safety: const methods of AgentCa may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"

namespace airlock::agent {

struct CertificateInfo {
  std::string common_name;
  std::string serial_hex;
  int64_t not_before_s = 0;  // Unix seconds
  int64_t not_after_s = 0;
};

// A private key (PEM, wiped on destruction) and its certificate or CSR (PEM).
struct KeyAndPem {
  Secret key_pem;
  std::string pem;
};

class AgentCa {
 public:
  // Loads <dir>/ca.key and <dir>/ca.crt, or creates both (valid ten years)
  // when neither exists. FailedPrecondition when only one exists or the key
  // file is readable by others.
  static Result<std::unique_ptr<AgentCa>> OpenOrCreate(const std::string& dir);
  ~AgentCa();
  AgentCa(const AgentCa&) = delete;
  AgentCa& operator=(const AgentCa&) = delete;

  const std::string& certificate_pem() const { return certificate_pem_; }
  std::string certificate_file() const { return dir_ + "/ca.crt"; }

  // Signs `csr_pem` (its self-signature must verify; its subject is ignored)
  // as a clientAuth certificate for `common_name`, valid from a minute ago
  // for `lifetime`. InvalidArgument for a malformed CSR or bad signature.
  Result<std::string> SignClientCsr(std::string_view csr_pem, const std::string& common_name,
                                    std::chrono::seconds lifetime) const;
  // A fresh key and a serverAuth certificate for `names` (IP literals become
  // IP SANs, others DNS SANs).
  Result<KeyAndPem> IssueServerCertificate(const std::vector<std::string>& names,
                                           std::chrono::seconds lifetime) const;

 private:
  struct Impl;
  explicit AgentCa(std::unique_ptr<Impl> impl, std::string dir, std::string pem);
  std::unique_ptr<Impl> impl_;
  std::string dir_;
  std::string certificate_pem_;
};

// A fresh P-256 key and a CSR for `common_name` (the agent's side of
// enrollment and renewal).
Result<KeyAndPem> MakeKeyAndCsr(const std::string& common_name);

// Subject CN, serial and validity of the first certificate in `pem`.
Result<CertificateInfo> InspectCertificate(std::string_view pem);

// Writes `contents` to `path` with mode 0600 (through a temporary file and a
// rename, so readers never see half a key).
Status WritePrivateFile(const std::string& path, std::string_view contents);
// Reads a whole file (bounded to 1 MiB). NotFound when missing.
Result<std::string> ReadSmallFile(const std::string& path);

}  // namespace airlock::agent
