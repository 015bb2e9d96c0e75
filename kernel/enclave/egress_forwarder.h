// Egress from inside an enclave, to approved endpoints only.
//
// The enclave runs in a network namespace of its own whose only interface is
// loopback: nothing inside can reach the outside by itself. For each approved
// source endpoint the isolator assigned a loopback address (the endpoint's own
// address when it is a loopback literal, otherwise 127.0.0.N, which the
// enclave's /etc/hosts maps the endpoint's host name to). The forwarder
// listens there; for every connection a connector makes it asks the kernel
// (a Dial frame) for a socket the KERNEL connected to the real endpoint, and
// relays bytes between the two until either side closes. A connection to
// anything else finds no listener and is refused by the enclave's own stack.
//
// The forwarder lives only while datasets are pulled: sealing stops it, and
// the kernel refuses dials once the enclave is sealed.
//
// Thread-safety: Stop may be called from any thread; the dial function is
// called from relay threads, concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/enclave/channel.h"

namespace airlock::enclave {

struct EgressRoute {
  std::string endpoint;  // "host:port" as approved; what the kernel dials
  std::string address;   // loopback IPv4 address to listen on inside the enclave
  uint16_t port = 0;
};

class EgressForwarder {
 public:
  // Connects to `endpoint` through the kernel; blocks until it answers.
  using DialFunction = std::function<Result<UniqueFd>(const std::string& endpoint)>;

  // Relayed connections open at once; more are refused (closed at accept).
  static constexpr size_t kMaxConnections = 64;

  // Binds every route's listener (InvalidArgument for a bad address,
  // Unavailable when a bind fails) and starts accepting.
  static Result<std::unique_ptr<EgressForwarder>> Start(const std::vector<EgressRoute>& routes,
                                                        DialFunction dial);
  ~EgressForwarder();  // Stop()
  EgressForwarder(const EgressForwarder&) = delete;
  EgressForwarder& operator=(const EgressForwarder&) = delete;

  // Closes the listeners and every relayed connection, and joins all threads.
  // Idempotent.
  void Stop();

  // Connections accepted so far (for tests and progress).
  uint64_t accepted() const { return accepted_.load(); }

 private:
  struct Listener {
    UniqueFd fd;
    std::string endpoint;
  };
  explicit EgressForwarder(DialFunction dial);
  void AcceptLoop();
  void Relay(UniqueFd inside, std::string endpoint);

  DialFunction dial_;
  std::vector<Listener> listeners_;
  UniqueFd wake_;  // eventfd: readable once stopping
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> accepted_{0};
  std::thread acceptor_;
  std::mutex stop_mutex_;
  bool stopped_ = false;  // GUARDED_BY(stop_mutex_)
  std::mutex mutex_;
  std::vector<std::thread> relays_;  // GUARDED_BY(mutex_)
  size_t open_ = 0;                  // GUARDED_BY(mutex_)
};

}  // namespace airlock::enclave
