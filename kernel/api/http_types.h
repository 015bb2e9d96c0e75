// The kernel's HTTP request/response values. Handlers are plain functions
// from HttpRequest to HttpResponse, kept apart from all socket I/O
// (http_server.h owns the sockets).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock {

// One parsed request. Every field is bounded by the server's limits
// (HttpServerOptions) before a handler sees it.
struct HttpRequest {
  std::string method;  // "GET", as sent (methods are case-sensitive)
  std::string target;  // raw target "/v1/requests?state=ready"
  std::string path;    // percent-decoded path "/v1/requests"
  // Decoded query parameters in order ('+' decodes to a space); a key
  // without '=' has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;
  std::string remote_address;        // "127.0.0.1:54321", "[::1]:54321"
  std::string peer_certificate_pem;  // client cert chain (PEM, leaf first) when TLS presented one
  bool tls = false;
  // True while the server calls the handler on one of its I/O threads (see
  // HttpHandler): the handler must then answer without blocking, or answer
  // HttpResponse::RunOnHandlerPool().
  bool on_io_thread = false;

  // Set by the server while the connection has not authenticated yet; null
  // otherwise (and for requests made outside a server). See MarkAuthenticated.
  std::shared_ptr<std::atomic<bool>> authenticated_mark;

  // Tells the server that this request presented a credential the identity
  // chain accepted (IdentityChain::Authenticate calls it on success, whatever
  // the handler answers afterwards). The connection then leaves the server's
  // pre-authentication pool for good: it is no longer shed to make room, its
  // keep-alive wait is idle_timeout instead of preauth_timeout, and it holds
  // one of the places kept for authenticated clients (HttpServerOptions).
  // Safe from any thread while the handler runs; a no-op when unset.
  void MarkAuthenticated() const {
    if (authenticated_mark) authenticated_mark->store(true, std::memory_order_release);
  }

  // Case-insensitive header lookup; the first match, empty when absent.
  std::string_view header(std::string_view name) const;
  // The first query parameter named exactly `name`.
  std::optional<std::string_view> query_param(std::string_view name) const;
};

// A body produced while it is sent (Server-Sent Events). The server writes
// the head (chunked transfer coding), then asks for the body piece by piece;
// it closes the connection once the body ends or the client goes away.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Asks for the next piece: `deliver` is called once, from any thread, with
  // it (non-empty), or with nullopt when the body ends. The server asks
  // again only once the piece was written (a slow client slows the
  // producer; nothing piles up in between).
  virtual void Next(std::function<void(std::optional<std::string>)> deliver) = 0;
  // The connection ended: no more Next. A `deliver` already under way may
  // still run; it is ignored.
  virtual void Cancel() = 0;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. The server always sets Content-Type (from content_type),
  // Content-Length (except on 204/304), Cache-Control: no-store and
  // X-Content-Type-Options: nosniff, which replace same-named entries here.
  // Framing headers (Content-Length, Transfer-Encoding, Connection,
  // Keep-Alive, Upgrade) are the server's and are ignored; entries with a
  // name that is not a token (max 256 bytes) or a value holding control
  // characters such as CR/LF (or over 16 KiB) are dropped and logged by name.
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is this file's content, streamed from disk in chunks
  // (large results never sit in memory whole); `body` is then ignored. A file
  // that cannot be opened becomes a 500.
  std::string body_file;
  // The body file is a temporary copy: removed once opened (or refused).
  bool body_file_is_temporary = false;

  // When set, the body is what `stream` produces, written as it comes;
  // `body` and `body_file` are ignored. While it produces nothing the server
  // writes an SSE comment line (":\n\n") every
  // HttpServerOptions::stream_keepalive, so that a client gone is noticed.
  std::shared_ptr<ResponseStream> stream;

  // Set only by RunOnHandlerPool(); every other field is then ignored.
  bool run_on_handler_pool = false;

  static HttpResponse Json(unsigned status, const nlohmann::json& body);
  // The answer of a handler called on an I/O thread (request.on_io_thread)
  // that cannot answer without blocking: the server calls it again, with the
  // same request, on the handler pool. Returned from the handler pool it is a
  // contract violation and becomes a 500.
  static HttpResponse RunOnHandlerPool();
  // {"error": "<snake_case code>", "message": "..."}
  static HttpResponse Error(unsigned status, std::string_view error, std::string_view message);
};

// Called possibly concurrently for different connections. When the server's
// HttpServerOptions::call_handlers_on_io_threads is set (the default) each
// request is first offered to the handler on the connection's I/O thread with
// request.on_io_thread = true: there the handler must not block (no durable
// commit, no network, no long lock wait) and answers either directly or with
// HttpResponse::RunOnHandlerPool(), after which it is called again on a
// handler thread, where it may block. A quick read answered on the I/O thread
// saves two thread hand-offs. An exception becomes a 500 {"error":"internal"}
// whose message never carries the exception text.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace airlock
