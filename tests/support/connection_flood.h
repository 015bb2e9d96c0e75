// Holds idle TCP connections open against a loopback listener, or opens and
// closes them without pause, the way a client without any credential would
// try to exhaust a server's connection slots. Plain POSIX sockets; every
// connection comes from a chosen loopback source address (127.0.0.x), so a
// test can play several client addresses on one machine.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace airlock::test {

// Raises this process's soft RLIMIT_NOFILE to at least `needed` descriptors,
// within the hard limit. False when the hard limit is lower.
bool EnsureDescriptorLimit(size_t needed);

// One TCP connection from `from` (an IPv4 address, port chosen by the
// kernel) to 127.0.0.1:`port`, connected within `timeout_ms`; -1 on failure.
int ConnectFrom(const std::string& from, uint16_t port, int timeout_ms = 2000);

class IdleConnections {
 public:
  IdleConnections() = default;
  ~IdleConnections();
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;

  // Opens `count` connections from `from` and keeps them, sending `first`
  // (when not empty) on each, then nothing more. Returns how many connected.
  size_t Open(const std::string& from, uint16_t port, size_t count, std::string_view first = {});
  // How many held connections the server has acted on (closed, reset, or
  // written to), checked without blocking.
  size_t ServerClosed() const;
  size_t held() const { return fds_.size(); }
  void CloseAll();

 private:
  std::vector<int> fds_;
};

// Connects and closes continuously from each address in `from` (a thread
// each) until destroyed, keeping up to `window` connections of its own open
// at once per address: each new connection beyond the window closes the
// oldest. A reconnect storm that keeps a listener's slots occupied. `pause`
// between connects paces each thread (zero: as fast as it can).
class ConnectionStorm {
 public:
  ConnectionStorm(std::vector<std::string> from, uint16_t port, size_t window,
                  std::string first = {},
                  std::chrono::microseconds pause = std::chrono::microseconds{0});
  ~ConnectionStorm();
  ConnectionStorm(const ConnectionStorm&) = delete;
  ConnectionStorm& operator=(const ConnectionStorm&) = delete;

  uint64_t connects() const { return connects_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> connects_{0};
  std::vector<std::thread> threads_;
};

}  // namespace airlock::test
