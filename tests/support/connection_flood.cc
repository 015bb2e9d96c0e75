#include "tests/support/connection_flood.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <deque>

namespace airlock::test {

bool EnsureDescriptorLimit(size_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur >= needed) return true;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) return false;
  limit.rlim_cur = static_cast<rlim_t>(needed);
  return setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

int ConnectFrom(const std::string& from, uint16_t port, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port);
  if (inet_pton(AF_INET, from.c_str(), &local.sin_addr) != 1 ||
      inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr) != 1 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    ::close(fd);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (::poll(&p, 1, timeout_ms) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

IdleConnections::~IdleConnections() {
  CloseAll();
}

size_t IdleConnections::Open(const std::string& from, uint16_t port, size_t count,
                             std::string_view first) {
  size_t opened = 0;
  for (size_t i = 0; i < count; ++i) {
    const int fd = ConnectFrom(from, port);
    if (fd < 0) continue;
    if (!first.empty()) (void)::send(fd, first.data(), first.size(), MSG_NOSIGNAL);
    fds_.push_back(fd);
    ++opened;
  }
  return opened;
}

size_t IdleConnections::ServerClosed() const {
  size_t closed = 0;
  for (int fd : fds_) {
    char byte = 0;
    const ssize_t got = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) ++closed;
  }
  return closed;
}

void IdleConnections::CloseAll() {
  for (int fd : fds_) ::close(fd);
  fds_.clear();
}

ConnectionStorm::ConnectionStorm(std::vector<std::string> from, uint16_t port, size_t window,
                                 std::string first, std::chrono::microseconds pause) {
  for (auto& address : from) {
    threads_.emplace_back([this, address, port, window, first, pause] {
      std::deque<int> open;
      while (!stop_.load()) {
        const int fd = ConnectFrom(address, port, 500);
        if (fd < 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));  // refused: no busy loop
          continue;
        }
        if (!first.empty()) (void)::send(fd, first.data(), first.size(), MSG_NOSIGNAL);
        open.push_back(fd);
        connects_.fetch_add(1);
        while (open.size() > window) {
          ::close(open.front());
          open.pop_front();
        }
        if (pause.count() > 0) std::this_thread::sleep_for(pause);
      }
      for (int fd : open) ::close(fd);
    });
  }
}

ConnectionStorm::~ConnectionStorm() {
  stop_ = true;
  for (auto& thread : threads_) thread.join();
}

}  // namespace airlock::test
