// Internal to the HTTP server: the state every connection shares and the
// entry point that starts serving one accepted socket. Not for use outside
// kernel/api.
#pragma once

#include <cstddef>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "airlock/cpp/connection_budget.hpp"
#include "kernel/api/http_server.h"
#include "kernel/api/http_types.h"

namespace airlock::http_internal {

// Immutable after Start() except the budget's books. Sessions hold it by
// shared_ptr, so it outlives every connection.
struct ServerContext {
  ServerContext(HttpServerOptions opts, HttpHandler h,
                boost::asio::thread_pool::executor_type handler_exec)
      : options(std::move(opts)),
        handler(std::move(h)),
        handler_executor(handler_exec),
        budget(sdk::ConnectionLimits{options.max_connections, options.max_preauth_connections,
                                     options.max_preauth_connections_per_address, 0}) {}

  void Report(ConnectionLimitEvent event) const {
    if (options.on_connection_limited) options.on_connection_limited(event);
  }

  const HttpServerOptions options;
  const HttpHandler handler;
  // Where handlers run. Sessions never run after the pool is gone (the server
  // stops the I/O threads first), so holding the executor is safe.
  const boost::asio::thread_pool::executor_type handler_executor;
  std::unique_ptr<boost::asio::ssl::context> ssl;  // set iff options.tls
  sdk::ConnectionBudget budget;                    // every open session holds a ticket
};

// Admits `socket` (already on its own strand) to the connection budget —
// possibly shedding older idle pre-authentication connections, or closing
// `socket` at once when nothing can be shed — and serves it until the peer
// leaves, a limit is hit, it is shed or the I/O context stops. Call from the
// acceptor's strand.
void StartSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerContext> context);

}  // namespace airlock::http_internal
