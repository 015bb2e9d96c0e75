#include "tests/support/syslog_tls_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <stdexcept>

namespace airlock::test {

SyslogTlsReceiver::SyslogTlsReceiver(const std::string& cert_file, const std::string& key_file) {
  // A handshake answered to a client that already left must not end the test.
  ::signal(SIGPIPE, SIG_IGN);
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (ctx_ == nullptr || SSL_CTX_use_certificate_chain_file(ctx_, cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx_, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("syslog receiver: cannot load its certificate");
  }
  Start();
}

SyslogTlsReceiver::~SyslogTlsReceiver() {
  Stop();
  SSL_CTX_free(ctx_);
}

void SyslogTlsReceiver::Start() {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port_);
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_, 16) != 0) {
    throw std::runtime_error("syslog receiver: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  running_ = true;
  acceptor_ = std::thread([this] { Accept(); });
}

void SyslogTlsReceiver::Stop() {
  if (!running_.exchange(false)) return;
  acceptor_.join();
  ::close(listener_);
  listener_ = -1;
  std::vector<std::thread> servers;
  {
    std::lock_guard lock(mu_);
    for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
    servers.swap(servers_);
  }
  for (auto& t : servers) t.join();
}

std::vector<std::string> SyslogTlsReceiver::messages() const {
  std::lock_guard lock(mu_);
  return messages_;
}

void SyslogTlsReceiver::Accept() {
  while (running_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 20) != 1) continue;
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    connections_.push_back(fd);
    servers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void SyslogTlsReceiver::Serve(int fd) {
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    std::string buffer;
    char chunk[16384];
    for (;;) {
      const int n = SSL_read(ssl, chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      // Octet counting: "LEN SP MSG", repeated.
      for (;;) {
        const size_t space = buffer.find(' ');
        if (space == std::string::npos) break;
        const size_t length = std::stoul(buffer.substr(0, space));
        if (buffer.size() < space + 1 + length) break;
        std::lock_guard lock(mu_);
        messages_.push_back(buffer.substr(space + 1, length));
        buffer.erase(0, space + 1 + length);
      }
    }
  }
  SSL_free(ssl);
  std::lock_guard lock(mu_);
  std::erase(connections_, fd);
  ::close(fd);
}

}  // namespace airlock::test
