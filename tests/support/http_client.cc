#include "tests/support/http_client.h"

#include <cctype>

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace airlock::test {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

constexpr uint64_t kResponseBodyLimit = 256ull << 20;

// Runs one asynchronous operation to completion on `ioc`; the operation's own
// deadline (tcp_stream::expires_after) bounds the wait.
template <class Start>
error_code RunOp(net::io_context& ioc, Start&& start) {
  error_code result = net::error::would_block;
  ioc.restart();
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.run();
  return result;
}

bool IsIpAddress(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

nlohmann::json ClientResponse::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return {};
}

struct HttpClient::Impl {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  std::string host;
  uint16_t port = 0;
  std::optional<ClientTls> tls;
  std::chrono::milliseconds timeout{30000};
  net::io_context ioc;
  std::unique_ptr<ssl::context> ssl_context;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<TlsStream> secure;
  beast::flat_buffer buffer;
  int connections_opened = 0;

  bool connected() const { return plain || secure; }

  void Disconnect() {
    error_code ignored;
    if (plain) plain->socket().close(ignored);
    if (secure) beast::get_lowest_layer(*secure).socket().close(ignored);
    plain.reset();
    secure.reset();
    buffer.clear();
  }

  std::string Connect() {
    Disconnect();
    tcp::resolver resolver(ioc);
    error_code ec;
    const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return "resolve: " + ec.message();
    auto stream = std::make_unique<beast::tcp_stream>(ioc);
    stream->expires_after(timeout);
    ec = RunOp(ioc, [&](auto handler) { stream->async_connect(endpoints, std::move(handler)); });
    if (ec) return "connect: " + ec.message();
    ++connections_opened;
    if (!tls) {
      plain = std::move(stream);
      return {};
    }
    if (!ssl_context) {
      std::string error = MakeSslContext();
      if (!error.empty()) return error;
    }
    auto tls_stream = std::make_unique<TlsStream>(std::move(*stream), *ssl_context);
    if (!IsIpAddress(host)) SSL_set_tlsext_host_name(tls_stream->native_handle(), host.c_str());
    tls_stream->set_verify_callback(ssl::host_name_verification(host));
    beast::get_lowest_layer(*tls_stream).expires_after(timeout);
    ec = RunOp(ioc, [&](auto handler) {
      tls_stream->async_handshake(ssl::stream_base::client, std::move(handler));
    });
    if (ec) return "tls handshake: " + ec.message();
    secure = std::move(tls_stream);
    return {};
  }

  std::string MakeSslContext() {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
    // Present exactly the chain in client_cert_file: without this, OpenSSL
    // completes it from the trust store, and tests could not control it.
    SSL_CTX_set_mode(context->native_handle(), SSL_MODE_NO_AUTO_CHAIN);
    error_code ec;
    context->set_verify_mode(ssl::verify_peer, ec);
    if (!tls->ca_file.empty()) context->load_verify_file(tls->ca_file, ec);
    if (ec) return "tls: load CA " + tls->ca_file + ": " + ec.message();
    if (!tls->client_cert_file.empty()) {
      context->use_certificate_chain_file(tls->client_cert_file, ec);
      if (ec) return "tls: load client certificate: " + ec.message();
      context->use_private_key_file(tls->client_key_file, ssl::context::pem, ec);
      if (ec) return "tls: load client key: " + ec.message();
    }
    ssl_context = std::move(context);
    return {};
  }

  template <class Stream>
  ClientResponse Exchange(Stream& stream, const http::request<http::string_body>& request,
                          bool* retryable) {
    ClientResponse out;
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(timeout);
    error_code ec =
        RunOp(ioc, [&](auto handler) { http::async_write(stream, request, std::move(handler)); });
    http::response_parser<http::string_body> parser;
    parser.body_limit(kResponseBodyLimit);
    parser.header_limit(1 << 20);
    // A server may answer and close before reading the whole request (413):
    // still try to read what it said.
    lowest.expires_after(timeout);
    error_code read_ec = RunOp(
        ioc, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
    if (read_ec) {
      *retryable = !parser.is_header_done();
      out.error =
          (ec ? "write: " + ec.message() + "; " : std::string()) + "read: " + read_ec.message();
      Disconnect();
      return out;
    }
    auto response = parser.release();
    out.status = response.result_int();
    for (const auto& field : response) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    if (!response.keep_alive()) Disconnect();
    out.body = std::move(response.body());
    return out;
  }
};

HttpClient::HttpClient(std::string host, uint16_t port, std::optional<ClientTls> tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->tls = std::move(tls);
}

HttpClient::~HttpClient() {
  impl_->Disconnect();
}

void HttpClient::Disconnect() {
  impl_->Disconnect();
}

int HttpClient::connections_opened() const {
  return impl_->connections_opened;
}

void HttpClient::set_timeout(std::chrono::milliseconds timeout) {
  impl_->timeout = timeout;
}

ClientResponse HttpClient::Request(std::string_view method, std::string_view target,
                                   std::string_view body, Headers headers) {
  http::request<http::string_body> request;
  request.version(11);
  request.method_string(method);
  request.target(target);
  request.set(http::field::host, impl_->host + ":" + std::to_string(impl_->port));
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    if (beast::iequals(name, "content-type")) has_content_type = true;
    request.insert(name, value);
  }
  if (!body.empty() && !has_content_type)
    request.set(http::field::content_type, "application/json");
  request.body() = std::string(body);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    request.prepare_payload();
  }

  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = impl_->connected();
    if (!reused) {
      std::string error = impl_->Connect();
      if (!error.empty()) {
        ClientResponse failed;
        failed.error = std::move(error);
        return failed;
      }
    }
    bool retryable = false;
    ClientResponse response = impl_->secure ? impl_->Exchange(*impl_->secure, request, &retryable)
                                            : impl_->Exchange(*impl_->plain, request, &retryable);
    if (response.status != 0 || !reused || !retryable) return response;
    // The kept-alive connection had been closed by the server: once more, fresh.
  }
  ClientResponse failed;
  failed.error = "unreachable";
  return failed;
}

ClientResponse HttpClient::Get(std::string_view target, Headers headers) {
  return Request("GET", target, {}, std::move(headers));
}

ClientResponse HttpClient::Post(std::string_view target, std::string_view body, Headers headers) {
  return Request("POST", target, body, std::move(headers));
}

std::string SendRaw(const std::string& host, uint16_t port, std::string_view bytes,
                    std::chrono::milliseconds timeout) {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  error_code ec;
  const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return {};
  beast::tcp_stream stream(ioc);
  stream.expires_after(timeout);
  ec = RunOp(ioc, [&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
  if (ec) return {};
  ec = RunOp(ioc, [&](auto handler) {
    net::async_write(stream, net::buffer(bytes.data(), bytes.size()), std::move(handler));
  });
  std::string received;
  char chunk[16384];
  for (;;) {
    size_t n = 0;
    ec = RunOp(ioc, [&](auto handler) {
      stream.async_read_some(net::buffer(chunk), [&n, handler = std::move(handler)](
                                                     error_code read_ec, size_t count) mutable {
        n = count;
        handler(read_ec);
      });
    });
    received.append(chunk, n);
    if (ec) break;
  }
  return received;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

}  // namespace airlock::test
