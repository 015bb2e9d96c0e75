#include "tests/plugins/identity/oidc_jwt/jwks_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace airlock::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct JwksServer::Impl {
  asio::io_context ioc;
  asio::ssl::context tls{asio::ssl::context::tls_server};
  tcp::acceptor acceptor{ioc};
};

JwksServer::JwksServer(const CertFiles& server) : impl_(std::make_unique<Impl>()) {
  impl_->tls.use_certificate_chain_file(server.cert_file);
  impl_->tls.use_private_key_file(server.key_file, asio::ssl::context::pem);
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  thread_ = std::thread([this] { Serve(); });
}

JwksServer::~JwksServer() {
  stopping_ = true;
  // Wake the blocking accept with a connection of our own.
  try {
    asio::io_context ioc;
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  } catch (...) {
  }
  thread_.join();
}

std::string JwksServer::url() const {
  return "https://127.0.0.1:" + std::to_string(port_) + "/jwks";
}

void JwksServer::set_document(std::string document) {
  std::lock_guard<std::mutex> lock(mutex_);
  document_ = std::move(document);
}

void JwksServer::set_response_delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  delay_ = delay;
}

int JwksServer::WaitForFetches(int n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  fetched_.wait_for(lock, timeout, [&] { return fetches_.load() >= n; });
  return fetches_.load();
}

void JwksServer::Serve() {
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket socket(impl_->ioc);
    impl_->acceptor.accept(socket, ec);
    if (stopping_) return;
    if (ec) continue;
    // Bounded by the test: a client that stalls would stall only this test.
    timeval tv{5, 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    asio::ssl::stream<tcp::socket> stream(std::move(socket), impl_->tls);
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (ec) continue;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::read(stream, buffer, request, ec);
    if (ec) continue;
    if (request.target() == "/jwks") {
      // Counted before answering, so a client that got its answer sees it.
      std::lock_guard<std::mutex> lock(mutex_);
      ++fetches_;
      fetched_.notify_all();
    }
    std::string body;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body = document_;
      delay = delay_;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);  // simulates a slow issuer
    http::response<http::string_body> response;
    response.version(11);
    response.keep_alive(false);
    if (request.target() == "/jwks") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "application/json");
      response.body() = body;
    } else {
      response.result(http::status::not_found);
    }
    response.prepare_payload();
    http::write(stream, response, ec);
    stream.shutdown(ec);
  }
}

}  // namespace airlock::test
