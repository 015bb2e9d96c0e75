#include "tests/support/test_http_server.h"

#include <sys/socket.h>

#include <condition_variable>
#include <mutex>
#include <thread>

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

namespace {

bool SameName(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string ReceivedRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (SameName(key, name)) return value;
  }
  return {};
}

size_t ReceivedRequest::HeaderCount(std::string_view name) const {
  size_t n = 0;
  for (const auto& header : headers) n += SameName(header.first, name) ? 1 : 0;
  return n;
}

struct TestHttpServer::Impl {
  Impl(Handler h, TestHttpServer* owner) : handler(std::move(h)), server(owner) {}

  template <typename Stream>
  void Serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(16 * 1024 * 1024);
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);
      if (ec) return;
      const auto& request = parser.get();
      ReceivedRequest seen;
      seen.method = std::string(request.method_string());
      seen.target = std::string(request.target());
      for (const auto& field : request) {
        seen.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      seen.body = request.body();
      Handler current;
      {
        std::lock_guard lock(mutex);
        received.push_back(seen);
        current = handler;
      }
      received_cv.notify_all();
      ScriptedReply reply = current ? current(seen) : ScriptedReply{};
      if (reply.hold) {
        std::unique_lock lock(mutex);
        released_cv.wait(lock, [&] { return released || stopping; });
        if (stopping) return;
      }
      http::response<http::string_body> response{static_cast<http::status>(reply.status), 11};
      response.set(http::field::content_type, reply.content_type);
      for (const auto& [name, value] : reply.headers) response.insert(name, value);
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
      if (ec) {
        server->failed_handshakes_++;
      } else {
        Serve(stream);
      }
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
  TestHttpServer* server;
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<ssl::context> tls;
  std::thread accept_thread;
  mutable std::mutex mutex;
  mutable std::condition_variable received_cv;
  std::condition_variable released_cv;
  bool released = false;
  std::atomic<bool> stopping{false};
  std::vector<ReceivedRequest> received;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::vector<std::thread> workers;
};

TestHttpServer::TestHttpServer() : TestHttpServer(Handler()) {}

TestHttpServer::TestHttpServer(Handler handler, std::string cert_file, std::string key_file)
    : impl_(std::make_unique<Impl>(std::move(handler), this)) {
  if (!cert_file.empty()) {
    tls_ = true;
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

TestHttpServer::~TestHttpServer() {
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

std::string TestHttpServer::url(std::string_view path) const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
         std::string(path);
}

void TestHttpServer::SetHandler(Handler handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->handler = std::move(handler);
}

std::vector<ReceivedRequest> TestHttpServer::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

bool TestHttpServer::WaitForRequests(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->received_cv.wait_for(lock, timeout,
                                     [&] { return impl_->received.size() >= count; });
}

void TestHttpServer::Release() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->released = true;
  }
  impl_->released_cv.notify_all();
}

}  // namespace airlock::test
