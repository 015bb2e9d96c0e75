// The agent link through an HTTP forward proxy (RFC 9110 CONNECT): the
// agent connects to the proxy, asks it for a tunnel to the kernel's agent
// listener (with Basic proxy authentication when configured), and runs TLS
// to the kernel inside that tunnel, so the proxy sees only the kernel's
// address and ciphertext. A refusal (407, 403, 502, ...) is an error that
// names the proxy's status line, never the credentials.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"

namespace airlock::agent {

struct ProxyAddress {
  std::string host;
  uint16_t port = 3128;
  std::string ToString() const { return host + ":" + std::to_string(port); }
};

// "http://host:port" (an https:// proxy URL is refused: the TLS that
// matters is the kernel's, inside the tunnel).
Result<ProxyAddress> ParseProxyUrl(std::string_view url);

// The CONNECT request for `host`:`port`; `credentials` ("user:password")
// empty for none. The caller wipes it after sending (it carries them).
std::string ConnectRequest(const std::string& host, uint16_t port, std::string_view credentials);

// Ok for a 2xx status line in `head` (the reply up to its blank line),
// Unavailable naming the proxy's status otherwise.
Status CheckConnectReply(std::string_view head, const std::string& proxy);

// Over `socket`, already connected to the proxy: sends `request`, reads the
// reply's head (at most 16 KiB) and calls `done` with the outcome. The
// socket then carries the tunnel.
void AsyncProxyConnect(boost::asio::ip::tcp::socket& socket, std::string request,
                       const std::string& proxy, std::function<void(Status)> done);

// The same, blocking (the socket's own timeouts bound it).
Status ProxyConnect(boost::asio::ip::tcp::socket& socket, std::string request,
                    const std::string& proxy);

}  // namespace airlock::agent
