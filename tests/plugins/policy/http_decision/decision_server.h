// A real HTTP(S) decision service for tests, on 127.0.0.1: Beast, one thread
// per connection, keep-alive, answers from a handler the test sets. Counts
// connections and records what it received.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace airlock::test {

struct DecisionRequest {
  std::string method;
  std::string target;
  std::string content_type;
  std::string authorization;
  std::string body;
};

struct DecisionReply {
  unsigned status = 200;
  std::string body;
  bool hold = false;         // wait until Release() before answering
  bool close_after = false;  // close the connection after answering (without saying so)
};

class DecisionServer {
 public:
  using Handler = std::function<DecisionReply(const DecisionRequest&)>;

  // TLS when cert/key files are given.
  explicit DecisionServer(Handler handler, std::string cert_file = "", std::string key_file = "");
  ~DecisionServer();
  DecisionServer(const DecisionServer&) = delete;
  DecisionServer& operator=(const DecisionServer&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::vector<DecisionRequest> requests() const;
  // Lets held replies go.
  void Release();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
};

}  // namespace airlock::test
