#include "listener.h"

#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace airlock::tunnels::https {

namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

Listener::Listener(net::io_context& io, SessionContext& context, net::ssl::context* tls)
    : io_(io),
      context_(context),
      tls_(tls),
      acceptor_(net::make_strand(io)),
      backoff_(acceptor_.get_executor()) {}

Status Listener::Open(const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  const std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  const auto fail = [&](const char* step) {
    return Status::Unavailable("tunnel configuration.listen_address/port: cannot " +
                               std::string(step) + " " + where + ": " + ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR on");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return fail("read the port of");
  return Status::Ok();
}

void Listener::Start() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] { self->DoAccept(); });
}

void Listener::Stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
    self->backoff_.cancel();
  });
}

void Listener::DoAccept() {
  // Each connection gets its own strand.
  acceptor_.async_accept(
      net::make_strand(io_),
      [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
        if (ec) {
          // Out of descriptors and the like: retry shortly rather than spin.
          self->backoff_.expires_after(std::chrono::milliseconds(100));
          self->backoff_.async_wait([self](boost::system::error_code wait_ec) {
            if (!wait_ec) self->DoAccept();
          });
          return;
        }
        // Responses go out as a header then body chunks: without TCP_NODELAY,
        // Nagle holds the last small segment until the client's delayed ACK
        // (~40 ms per query on Linux).
        boost::system::error_code nodelay_ec;
        socket.set_option(tcp::no_delay(true), nodelay_ec);  // best effort
        StartSession(std::move(socket), self->tls_, self->context_);
        self->DoAccept();
      });
}

}  // namespace airlock::tunnels::https
