// A small HTTPS server on 127.0.0.1 that serves a JWKS document, for the
// oidc-jwt tests: Boost.Beast over OpenSSL, one connection at a time, in its
// own thread. The test swaps the document (key rotation), counts fetches,
// and can hold each response back for a while (to make concurrent callers
// overlap one fetch).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tests/support/test_pki.h"

namespace airlock::test {

class JwksServer {
 public:
  // Serves with `server` (certificate chain + key). Listens at once.
  explicit JwksServer(const CertFiles& server);
  ~JwksServer();
  JwksServer(const JwksServer&) = delete;
  JwksServer& operator=(const JwksServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const;  // https://127.0.0.1:<port>/jwks

  void set_document(std::string document);
  void set_response_delay(std::chrono::milliseconds delay);
  // Completed GET /jwks requests so far.
  int fetches() const { return fetches_.load(); }
  // Blocks until fetches() >= n or `timeout` passes; the final count.
  int WaitForFetches(int n, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  void Serve();

  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::atomic<int> fetches_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::condition_variable fetched_;
  std::string document_;                // guarded by mutex_
  std::chrono::milliseconds delay_{0};  // guarded by mutex_
  std::thread thread_;
};

}  // namespace airlock::test
