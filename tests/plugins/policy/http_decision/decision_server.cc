#include "tests/plugins/policy/http_decision/decision_server.h"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace airlock::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct DecisionServer::Impl {
  Impl(Handler h, DecisionServer* owner) : handler(std::move(h)), server(owner) {}

  template <typename Stream>
  void Serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      beast::error_code ec;
      http::read(stream, buffer, request, ec);
      if (ec) return;
      DecisionRequest seen{std::string(request.method_string()), std::string(request.target()),
                           std::string(request[http::field::content_type]),
                           std::string(request[http::field::authorization]), request.body()};
      {
        std::lock_guard lock(mutex);
        received.push_back(seen);
      }
      DecisionReply reply = handler(seen);
      if (reply.hold) {
        std::unique_lock lock(mutex);
        released_cv.wait(lock, [&] { return released || stopping; });
        if (stopping) return;
      }
      http::response<http::string_body> response{static_cast<http::status>(reply.status), 11};
      response.set(http::field::content_type, "application/json");
      response.keep_alive(request.keep_alive());
      response.body() = reply.body;
      response.prepare_payload();
      http::write(stream, response, ec);
      if (ec || reply.close_after || !request.keep_alive()) return;
    }
  }

  void Connection(std::shared_ptr<tcp::socket> socket) {
    if (tls) {
      ssl::stream<tcp::socket&> stream(*socket, *tls);
      beast::error_code ec;
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) Serve(stream);
    } else {
      Serve(*socket);
    }
    beast::error_code ignored;
    socket->shutdown(tcp::socket::shutdown_both, ignored);
  }

  void AcceptLoop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(io);
      beast::error_code ec;
      acceptor.accept(*socket, ec);
      if (ec || stopping) return;
      server->connections_++;
      std::lock_guard lock(mutex);
      sockets.push_back(socket);
      workers.emplace_back([this, socket] { Connection(socket); });
    }
  }

  Handler handler;
  DecisionServer* server;
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<ssl::context> tls;
  std::thread accept_thread;
  std::mutex mutex;
  std::condition_variable released_cv;
  bool released = false;
  std::atomic<bool> stopping{false};
  std::vector<DecisionRequest> received;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::vector<std::thread> workers;
};

DecisionServer::DecisionServer(Handler handler, std::string cert_file, std::string key_file)
    : impl_(std::make_unique<Impl>(std::move(handler), this)) {
  if (!cert_file.empty()) {
    impl_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(cert_file);
    impl_->tls->use_private_key_file(key_file, ssl::context::pem);
  }
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->accept_thread = std::thread([this] { impl_->AcceptLoop(); });
}

DecisionServer::~DecisionServer() {
  impl_->stopping = true;
  // shutdown() wakes the blocked accept and reads without racing their owners.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  impl_->accept_thread.join();
  {
    std::lock_guard lock(impl_->mutex);
    for (auto& s : impl_->sockets) ::shutdown(s->native_handle(), SHUT_RDWR);
  }
  impl_->released_cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

std::vector<DecisionRequest> DecisionServer::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

void DecisionServer::Release() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->released = true;
  }
  impl_->released_cv.notify_all();
}

}  // namespace airlock::test
