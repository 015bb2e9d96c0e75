// One client connection (TLS or plain TCP), after the Beast advanced server:
// a strand per connection, a fresh parser with header and body limits for
// every request, a deadline on every read and write, one request at a time.
// Requests that need the host's channel run on the query pool; their answer
// comes back through the connection's ResponseChannel.
#pragma once

#include <atomic>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "airlock/cpp/host.hpp"
#include "config.h"
#include "query_job.h"
#include "router.h"

namespace airlock::tunnels::https {

// What every connection shares. Owned by the tunnel; outlives every session.
struct SessionContext {
  const HttpsTunnelConfig& config;
  const sdk::Host& host;
  const RequestRouter& router;
  boost::asio::thread_pool& query_pool;
  QueryLimits limits;
  std::atomic<unsigned> active_sessions{0};
};

// Take an accepted socket (bound to a strand) and serve it until it closes.
void StartTlsSession(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& tls,
                     SessionContext& context);
void StartPlainSession(boost::asio::ip::tcp::socket socket, SessionContext& context);

}  // namespace airlock::tunnels::https
