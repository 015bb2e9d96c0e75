// Internal to the HTTP server: the state every connection shares and the
// entry point that starts serving one accepted socket. Not for use outside
// kernel/api.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "kernel/api/http_server.h"
#include "kernel/api/http_types.h"

namespace airlock::http_internal {

// Immutable after Start() except `connections`. Sessions hold it by
// shared_ptr, so it outlives every connection.
struct ServerContext {
  ServerContext(HttpServerOptions opts, HttpHandler h,
                boost::asio::thread_pool::executor_type handler_exec)
      : options(std::move(opts)), handler(std::move(h)), handler_executor(handler_exec) {}

  const HttpServerOptions options;
  const HttpHandler handler;
  // Where handlers run. Sessions never run after the pool is gone (the server
  // stops the I/O threads first), so holding the executor is safe.
  const boost::asio::thread_pool::executor_type handler_executor;
  std::unique_ptr<boost::asio::ssl::context> ssl;  // set iff options.tls
  std::atomic<size_t> connections{0};              // open sessions
};

// Serves `socket` (already on its own strand) until the peer leaves, a limit
// is hit or the I/O context stops. The caller has already counted the
// connection in context->connections; the session uncounts it when destroyed.
void StartSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerContext> context);

}  // namespace airlock::http_internal
