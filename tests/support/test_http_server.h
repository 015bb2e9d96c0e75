// A real HTTP(S) server for tests, on 127.0.0.1: Beast, one thread per
// connection, keep-alive. It records every request (method, target, all
// headers, body) and answers each from a handler the test sets (status,
// body, extra headers; optionally held until Release()). Used as a decision
// service, a webhook receiver, a Slack stand-in.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock::test {

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order
  std::string body;

  // The first header named `name` (case-insensitive), or empty.
  std::string Header(std::string_view name) const;
  // How many headers are named `name` (case-insensitive).
  size_t HeaderCount(std::string_view name) const;
};

struct ScriptedReply {
  unsigned status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  bool hold = false;         // wait until Release() (or shutdown) before answering
  bool close_after = false;  // close the connection after answering (without saying so)
  std::string content_type = "application/json";
};

class TestHttpServer {
 public:
  using Handler = std::function<ScriptedReply(const ReceivedRequest&)>;

  // Answers 200 with an empty body until a handler is set.
  TestHttpServer();
  // TLS when cert/key files are given.
  explicit TestHttpServer(Handler handler, std::string cert_file = "", std::string key_file = "");
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port>" or "https://..." (with `path` appended).
  std::string url(std::string_view path = "/") const;

  // Replaces the handler for requests that arrive from now on.
  void SetHandler(Handler handler);

  int connections() const { return connections_.load(); }
  // TLS handshakes that failed (a client that did not trust us, or spoke plain HTTP).
  int failed_handshakes() const { return failed_handshakes_.load(); }

  // Every request received so far, in order (recorded before it is answered).
  std::vector<ReceivedRequest> requests() const;
  // Waits until at least `count` requests have arrived; false on timeout.
  bool WaitForRequests(size_t count, std::chrono::milliseconds timeout) const;

  // Lets held replies go.
  void Release();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  bool tls_ = false;
  std::atomic<int> connections_{0};
  std::atomic<int> failed_handshakes_{0};
};

}  // namespace airlock::test
