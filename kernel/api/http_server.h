// The kernel's HTTP/1.1 server (plain or TLS) on Boost.Beast. It owns the
// sockets, enforces the input limits below, and hands each complete request
// to one HttpHandler: first on the connection's I/O thread, where the handler
// answers what it can without blocking, else on a separate handler thread
// pool, so a handler that blocks (waiting for a durable commit, say) never
// stalls socket I/O (see HttpHandler in http_types.h).
//
// Thread-safety: port() and Stop() may be called from any thread except a
// handler thread (Stop() joins the handler pool).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "airlock/cpp/connection_budget.hpp"
#include "airlock/cpp/status.hpp"
#include "kernel/api/http_types.h"

namespace airlock {

struct TlsOptions {
  std::string certificate_file;  // PEM: leaf first, then any intermediates
  std::string private_key_file;  // PEM, unencrypted
  // If set: request (not require) a client certificate, advertising this
  // file's CA names. Verification against this CA happens in the identity
  // plugin, so any certificate is accepted at the TLS layer; its PEM chain
  // reaches the handler in HttpRequest::peer_certificate_pem.
  std::string client_ca_file;
};

enum class ConnectionLimitEvent {
  kShed,     // an idle pre-authentication connection was closed to make room
  kRefused,  // a new connection was closed on accept: nothing could be shed
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;                // 0 = ephemeral; see HttpServer::port()
  size_t body_limit = 1 << 20;      // larger body -> 413 payload_too_large
  size_t header_limit = 16 * 1024;  // larger request line + headers -> 431
  size_t max_header_count = 64;     // more header fields -> 431 too_many_headers
  // Bounds reading each request of an authenticated connection once its
  // first byte arrived, a request body, and writing each response; on expiry
  // the connection closes.
  std::chrono::milliseconds read_timeout{15000};
  // How long an authenticated keep-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout{60000};
  // How often a streamed response (HttpResponse::stream) that has nothing to
  // send writes a comment line, so that proxies keep it and a client that
  // left is noticed.
  std::chrono::milliseconds stream_keepalive{15000};

  // The connection budget (airlock/cpp/connection_budget.hpp). A connection
  // is pre-authentication until a request on it presents a credential the
  // identity chain accepts (HttpRequest::MarkAuthenticated). Pre-authentication
  // connections are bounded overall and per client address; when either pool
  // is full the oldest idle pre-authentication connection is closed to make
  // room (from the same address when that address is over its quota). The
  // places beyond max_preauth_connections are kept for authenticated
  // connections. A connection is refused on accept only when nothing can be
  // shed.
  size_t max_connections = 4096;
  size_t max_preauth_connections = 1024;  // must be smaller than max_connections
  size_t max_preauth_connections_per_address = 256;
  // A pre-authentication connection must complete its TLS handshake and its
  // first request header within this time from accept, and each later
  // request header within this time from the end of the previous response.
  std::chrono::milliseconds preauth_timeout{5000};
  // Called on an I/O thread, which it must not block, for each connection
  // the budget sheds or refuses (metrics).
  std::function<void(ConnectionLimitEvent)> on_connection_limited;

  int io_threads = 2;
  // Handlers wait while their commits are made durable, so this bounds the
  // requests in flight and with them how many share one group commit.
  int handler_threads = 32;
  // Offer each request to the handler on the I/O thread first (see
  // HttpHandler). false: every request goes straight to the handler pool.
  bool call_handlers_on_io_threads = true;
  std::optional<TlsOptions> tls;  // set: TLS 1.2+ only, no plaintext on this port
  // A TLS server only: a connection whose ClientHello offers the ALPN
  // protocol `handoff_alpn` is not served here. Its socket descriptor, with
  // nothing read from it, goes to `handoff` (which owns it from then on):
  // another TLS endpoint sharing this port (the agents' links). Called on an
  // I/O thread, which it must not block.
  std::string handoff_alpn;
  std::function<void(int fd)> handoff;
};

// Loads the TLS files as HttpServer::Start does (certificate chain, private
// key, that they match, client CA names) without binding anything; the same
// InvalidArgument, naming the file, on failure.
Status CheckTlsOptions(const TlsOptions& tls);

class HttpServer {
 public:
  // Binds, listens and starts serving. Fails with InvalidArgument for bad
  // options (address, TLS files) and Unavailable when the bind fails.
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // Stop()s

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the ephemeral one when options.port was 0).
  uint16_t port() const;

  // The connection budget's counts (open, pre-authentication, shed, refused).
  sdk::ConnectionBudgetStats connection_stats() const;

  // Idempotent. Closes the listener and every connection, waits for handlers
  // already running to return (their responses are dropped), abandons queued
  // ones and joins all threads. Must not be called from a handler.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock
