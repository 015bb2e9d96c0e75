#include "kernel/core/egress_dialer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <string>

namespace airlock {
namespace {

// A listening socket on 127.0.0.1 with an ephemeral port.
struct Listener {
  enclave::UniqueFd fd;
  int port = 0;
};

Listener Listen() {
  Listener l;
  l.fd = enclave::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (!l.fd.valid() || ::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      ::listen(l.fd.get(), 4) != 0 ||
      ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    return {};
  }
  l.port = ntohs(address.sin_port);
  return l;
}

TEST(EgressDialerTest, DialedSocketIsConnectedAndSendsWithoutNagleDelay) {
  Listener listener = Listen();
  ASSERT_TRUE(listener.fd.valid());
  auto dialed = DialTcp("127.0.0.1:" + std::to_string(listener.port), std::chrono::seconds(5));
  ASSERT_TRUE(dialed.ok()) << dialed.status().ToString();
  enclave::UniqueFd accepted(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted.valid());

  int nodelay = 0;
  socklen_t size = sizeof nodelay;
  ASSERT_EQ(::getsockopt(dialed->get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &size), 0);
  EXPECT_NE(nodelay, 0);

  // Connected and blocking: a byte written arrives at the accepted side.
  ASSERT_EQ(::send(dialed->get(), "x", 1, MSG_NOSIGNAL), 1);
  char byte = 0;
  ASSERT_EQ(::recv(accepted.get(), &byte, 1, 0), 1);
  EXPECT_EQ(byte, 'x');
}

TEST(EgressDialerTest, NothingListeningIsUnavailable) {
  Listener listener = Listen();
  ASSERT_TRUE(listener.fd.valid());
  const std::string endpoint = "127.0.0.1:" + std::to_string(listener.port);
  listener.fd = enclave::UniqueFd();  // closed: the port now refuses
  auto dialed = DialTcp(endpoint, std::chrono::seconds(5));
  ASSERT_FALSE(dialed.ok());
  EXPECT_EQ(dialed.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace airlock
