// The enclave link: the listener enclaves in pods dial to reach the kernel.
// An in-memory authority (never written anywhere) issues the listener's
// certificate and one client certificate per enclave; a connection is
// accepted only with a certificate that was issued for a pending enclave and
// not used before, and its bytes are then pumped to the local socket whose
// other end the host drives the enclave through.
//
// Thread-safety: every public method may be called concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/x509_mint.hpp"

namespace airlock::isolators::kubernetes {

// One enclave the listener waits for.
class PendingLink {
 public:
  // Waits until the enclave dialed in or `deadline`; true when it did.
  bool WaitConnected(std::chrono::steady_clock::time_point deadline);
  // Wakes WaitConnected early (a failure was seen elsewhere).
  void Abandon();
  bool connected() const;
  // True once a connected link has ended (the enclave's side went away or
  // the host closed its channel).
  bool closed() const;

 private:
  friend class LinkListener;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool connected_ = false;  // GUARDED_BY(mutex_)
  bool closed_ = false;     // GUARDED_BY(mutex_)
  bool abandoned_ = false;  // GUARDED_BY(mutex_)
};

struct ExpectedEnclave {
  int host_fd = -1;  // the control channel for the host; the caller owns it
  std::string ca_pem;
  std::string certificate_pem;
  sdk::x509_mint::KeyPem key_pem;
  std::string fingerprint;  // SHA-256 of the client certificate
  std::shared_ptr<PendingLink> link;
};

class LinkListener {
 public:
  // Listens on address:port (0: ephemeral); the certificate names `advertise_host`.
  static Result<std::unique_ptr<LinkListener>> Start(const std::string& address, uint16_t port,
                                                     const std::string& advertise_host,
                                                     sdk::Host host);
  ~LinkListener();
  LinkListener(const LinkListener&) = delete;
  LinkListener& operator=(const LinkListener&) = delete;

  uint16_t port() const;

  // Issues a one-time client certificate for `enclave_name` (valid for
  // `lifetime`) and makes the host's control socket pair.
  Result<ExpectedEnclave> Expect(const std::string& enclave_name, std::chrono::seconds lifetime);
  // Stops waiting for the enclave with `fingerprint` (it will never dial).
  void Forget(const std::string& fingerprint);

 private:
  struct Impl;
  explicit LinkListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::isolators::kubernetes
