// One client connection (TLS or plain TCP), after the Beast advanced server:
// a strand per connection, a fresh parser with header and body limits for
// every request, a deadline on every read and write, one request at a time.
// Requests that need the host's channel run on the query pool; their answer
// comes back through the connection's ResponseChannel.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "airlock/cpp/connection_budget.hpp"
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
  // Every open connection holds a ticket (pre-authentication until it
  // presents a valid credential; see ClaimEndpointShare).
  sdk::ConnectionBudget budget;
};

// Take an accepted socket (bound to a strand) into the connection budget —
// shedding older idle pre-authentication connections to make room, or
// closing `socket` when nothing can be shed — and serve it until it closes.
// `tls` null: plain HTTP. From the acceptor's strand.
void StartSession(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context* tls,
                  SessionContext& context);

}  // namespace airlock::tunnels::https
