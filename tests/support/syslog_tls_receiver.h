// A syslog receiver over TLS (RFC 5425) for tests: listens on 127.0.0.1,
// reads octet-counted RFC 5424 messages from every connection and keeps
// them in arrival order. Stop() is an outage (the listener and every
// connection closed); Start() listens again on the same port.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace airlock::test {

class SyslogTlsReceiver {
 public:
  SyslogTlsReceiver(const std::string& cert_file, const std::string& key_file);
  ~SyslogTlsReceiver();
  SyslogTlsReceiver(const SyslogTlsReceiver&) = delete;
  SyslogTlsReceiver& operator=(const SyslogTlsReceiver&) = delete;

  uint16_t port() const { return port_; }
  void Start();
  void Stop();

  // Every message so far, in arrival order.
  std::vector<std::string> messages() const;

 private:
  void Accept();
  void Serve(int fd);

  SSL_CTX* ctx_ = nullptr;
  uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> running_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::string> messages_;  // guarded by mu_
  std::vector<int> connections_;       // guarded by mu_
  std::vector<std::thread> servers_;   // guarded by mu_
};

}  // namespace airlock::test
