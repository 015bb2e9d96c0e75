// A bounded HTTP/1.1 client for one decision service: keep-alive connections
// in a small pool (at most max_connections calls in flight), a connect
// deadline and a whole-exchange deadline, a response size bound, and TLS
// with certificate and host name verification.
//
// Thread-safety: Post may be called concurrently. Each call takes one pooled
// connection for its duration; a connection is used by one thread at a time,
// driving its own io_context.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "config.h"

namespace boost::asio::ssl {
class context;
}

namespace airlock::policy::http_decision {

struct HttpAnswer {
  unsigned status = 0;
  std::string body;
};

class DecisionClient {
 public:
  // Builds the TLS context (CA bundle loaded once). InvalidArgument when the
  // CA file cannot be read.
  static Result<std::unique_ptr<DecisionClient>> Create(const DecisionServiceConfig& config);
  ~DecisionClient();
  DecisionClient(const DecisionClient&) = delete;
  DecisionClient& operator=(const DecisionClient&) = delete;

  // POSTs `body` (application/json) to the configured target. `authorization`
  // (may be empty) is sent as the Authorization header and wiped from the
  // request buffers after the call. Unavailable on connect failures, resets,
  // oversized answers and TLS failures; DeadlineExceeded when a deadline hit.
  // Messages never contain the body, the answer or the authorization value.
  Result<HttpAnswer> Post(std::string_view body, std::string_view authorization);

  // Connections opened so far (tests check keep-alive reuse with it).
  int64_t connections_opened() const;

 private:
  struct Connection;
  explicit DecisionClient(DecisionServiceConfig config);

  std::unique_ptr<Connection> Acquire(std::chrono::steady_clock::time_point deadline, Status* why);
  void Release(std::unique_ptr<Connection> connection, bool reusable);
  Result<HttpAnswer> Exchange(Connection& c, std::string_view body, std::string_view authorization,
                              std::chrono::steady_clock::time_point deadline,
                              bool* nothing_received);
  Status Connect(Connection& c, std::chrono::steady_clock::time_point deadline);

  const DecisionServiceConfig config_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  mutable std::mutex mutex_;
  std::condition_variable slot_free_;
  std::vector<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mutex_)
  int64_t in_use_ = 0;                             // GUARDED_BY(mutex_)
  int64_t opened_ = 0;                             // GUARDED_BY(mutex_)
};

}  // namespace airlock::policy::http_decision
