// A small synchronous HTTP/1.1 client for tests, plain or TLS, over Boost.Beast.
// It keeps one connection alive across calls and reconnects when the server
// closed it. Transport failures are reported in ClientResponse (status 0)
// rather than thrown, so it is safe to use from worker threads in a test.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock::test {

struct ClientTls {
  std::string ca_file;           // the server must chain to this CA (and match host)
  std::string client_cert_file;  // optional: PEM chain to present, leaf first
  std::string client_key_file;   // optional: key for client_cert_file
};

struct ClientResponse {
  unsigned status = 0;  // 0: no response (see error)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string error;  // transport error when status == 0

  // The body parsed as JSON; a discarded value (is_discarded()) when it is not JSON.
  nlohmann::json json() const;
  // Case-insensitive; empty when absent.
  std::string header(std::string_view name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port, std::optional<ClientTls> tls = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept-alive connection (connecting first if
  // needed; retrying once on a fresh connection if a reused one turned out
  // closed before any response byte). Sets Host, and Content-Type:
  // application/json when there is a body and none was given.
  ClientResponse Request(std::string_view method, std::string_view target,
                         std::string_view body = {}, Headers headers = {});
  ClientResponse Get(std::string_view target, Headers headers = {});
  ClientResponse Post(std::string_view target, std::string_view body, Headers headers = {});

  // Drops the current connection; the next request opens a new one.
  void Disconnect();
  // How many connections this client has opened so far.
  int connections_opened() const;
  // Every operation of a request must finish within this (default 30 s).
  void set_timeout(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Connects, writes `bytes` verbatim, then returns everything the server sends
// until it closes the connection or `timeout` passes (whichever comes first).
std::string SendRaw(const std::string& host, uint16_t port, std::string_view bytes,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// `text` percent-encoded as a URL component (RFC 3986 unreserved kept).
std::string PercentEncode(std::string_view text);

}  // namespace airlock::test
