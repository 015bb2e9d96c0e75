// Accepts connections and hands each to a new session, on its own strand.
// The connection budget (SessionContext::budget) decides which connections
// are served and which idle unauthenticated ones make room for them.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "session.h"

namespace airlock::tunnels::https {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // `tls` null means plain HTTP. Both must outlive the listener's I/O.
  Listener(boost::asio::io_context& io, SessionContext& context, boost::asio::ssl::context* tls);

  // Binds and listens; Unavailable naming the address when that fails.
  Status Open(const boost::asio::ip::tcp::endpoint& endpoint);
  // The bound port (useful after binding port 0).
  uint16_t port() const { return port_; }

  void Start();
  // Stops accepting (asynchronously, on the acceptor's strand).
  void Stop();

 private:
  void DoAccept();

  boost::asio::io_context& io_;
  SessionContext& context_;
  boost::asio::ssl::context* tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  uint16_t port_ = 0;
};

}  // namespace airlock::tunnels::https
