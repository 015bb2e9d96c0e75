#include "kernel/agent_main/proxy_connect.h"

#include <memory>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "airlock/cpp/base64url.hpp"
#include "kernel/common/crypto.h"

namespace airlock::agent {
namespace {

namespace asio = boost::asio;

constexpr size_t kMaxReplyHead = 16 * 1024;

std::string HeadOf(asio::streambuf& buffer, size_t n) {
  return std::string(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + n);
}

}  // namespace

Result<ProxyAddress> ParseProxyUrl(std::string_view url) {
  const std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) {
    return Status::InvalidArgument(
        "kernel.https_proxy must be an http://host:port URL (the "
        "kernel's own TLS runs inside the proxy's tunnel)");
  }
  std::string_view rest = url.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('@') != std::string_view::npos) {
    return Status::InvalidArgument(
        "kernel.https_proxy must not carry credentials; use kernel.proxy_credentials (a secret "
        "reference)");
  }
  ProxyAddress address;
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || rest.find('/') != std::string_view::npos) {
    if (rest.empty() || rest.find('/') != std::string_view::npos) {
      return Status::InvalidArgument("kernel.https_proxy must be http://host:port");
    }
    address.host = std::string(rest);
    return address;
  }
  address.host = std::string(rest.substr(0, colon));
  const std::string port(rest.substr(colon + 1));
  if (address.host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
      std::stoi(port) > 65535) {
    return Status::InvalidArgument("kernel.https_proxy must be http://host:port");
  }
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  }
  address.port = static_cast<uint16_t>(std::stoi(port));
  return address;
}

std::string ConnectRequest(const std::string& host, uint16_t port, std::string_view credentials) {
  const bool v6 = host.find(':') != std::string::npos;
  const std::string authority = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::string request = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (!credentials.empty()) {
    std::string encoded = sdk::Base64Encode(credentials);
    request += "Proxy-Authorization: Basic " + encoded + "\r\n";
    SecureWipe(encoded.data(), encoded.size());
  }
  request += "\r\n";
  return request;
}

Status CheckConnectReply(std::string_view head, const std::string& proxy) {
  const size_t end = head.find("\r\n");
  const std::string_view line = head.substr(0, end == std::string_view::npos ? 200 : end);
  // "HTTP/1.x NNN reason"
  if (line.size() >= 12 && line.substr(0, 7) == "HTTP/1." && line[8] == ' ' && line[9] == '2') {
    return Status::Ok();
  }
  std::string said(line.substr(0, 200));
  for (char& c : said) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return Status::Unavailable("the proxy " + proxy + " refused the tunnel to the kernel: " +
                             (said.empty() ? std::string("no answer") : said));
}

void AsyncProxyConnect(asio::ip::tcp::socket& socket, std::string request, const std::string& proxy,
                       std::function<void(Status)> done) {
  struct State {
    std::string request;
    asio::streambuf reply{kMaxReplyHead};
    std::string proxy;
    std::function<void(Status)> done;
  };
  auto state = std::make_shared<State>();
  state->request = std::move(request);
  state->proxy = proxy;
  state->done = std::move(done);
  asio::async_write(socket, asio::buffer(state->request),
                    [&socket, state](const boost::system::error_code& ec, size_t) {
                      SecureWipe(state->request.data(), state->request.size());
                      if (ec) {
                        return state->done(Status::Unavailable("cannot talk to the proxy " +
                                                               state->proxy + ": " + ec.message()));
                      }
                      asio::async_read_until(
                          socket, state->reply, "\r\n\r\n",
                          [state](const boost::system::error_code& rec, size_t n) {
                            if (rec) {
                              return state->done(Status::Unavailable(
                                  "the proxy " + state->proxy +
                                  " did not answer the tunnel request: " + rec.message()));
                            }
                            state->done(CheckConnectReply(HeadOf(state->reply, n), state->proxy));
                          });
                    });
}

Status ProxyConnect(asio::ip::tcp::socket& socket, std::string request, const std::string& proxy) {
  boost::system::error_code ec;
  asio::write(socket, asio::buffer(request), ec);
  SecureWipe(request.data(), request.size());
  if (ec) return Status::Unavailable("cannot talk to the proxy " + proxy + ": " + ec.message());
  asio::streambuf reply(kMaxReplyHead);
  const size_t n = asio::read_until(socket, reply, "\r\n\r\n", ec);
  if (ec) {
    return Status::Unavailable("the proxy " + proxy +
                               " did not answer the tunnel request: " + ec.message());
  }
  return CheckConnectReply(HeadOf(reply, n), proxy);
}

}  // namespace airlock::agent
