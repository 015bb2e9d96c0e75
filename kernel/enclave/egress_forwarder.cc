#include "kernel/enclave/egress_forwarder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace airlock::enclave {
namespace {

constexpr size_t kRelayBufferBytes = 64 * 1024;

std::string ErrnoText(int err) {
  return std::strerror(err);
}

void SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// One direction of a relay: bytes read from `from` wait in `buffer` until
// written to `to`.
struct Direction {
  int from;
  int to;
  std::vector<char> buffer = std::vector<char>(kRelayBufferBytes);
  size_t begin = 0;
  size_t end = 0;
  bool eof = false;   // `from` reached end-of-file
  bool done = false;  // eof and everything written; `to` was shut for writing

  bool has_pending() const { return begin < end; }
};

// Moves what it can without blocking. False on a hard error.
bool Pump(Direction& d) {
  if (!d.has_pending() && !d.eof) {
    const ssize_t n = ::recv(d.from, d.buffer.data(), d.buffer.size(), MSG_DONTWAIT);
    if (n > 0) {
      d.begin = 0;
      d.end = static_cast<size_t>(n);
    } else if (n == 0) {
      d.eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return false;
    }
  }
  while (d.has_pending()) {
    const ssize_t n =
        ::send(d.to, d.buffer.data() + d.begin, d.end - d.begin, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      d.begin += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    return false;
  }
  if (d.eof && !d.has_pending() && !d.done) {
    ::shutdown(d.to, SHUT_WR);
    d.done = true;
  }
  return true;
}

short WantedEvents(const Direction& read_side, const Direction& write_side) {
  // On this fd: readable for `read_side` (when its buffer is empty and it
  // has not ended), writable for `write_side` (when it has bytes waiting).
  short events = 0;
  if (!read_side.has_pending() && !read_side.eof) events |= POLLIN;
  if (write_side.has_pending()) events |= POLLOUT;
  return events;
}

}  // namespace

EgressForwarder::EgressForwarder(DialFunction dial) : dial_(std::move(dial)) {}

Result<std::unique_ptr<EgressForwarder>> EgressForwarder::Start(
    const std::vector<EgressRoute>& routes, DialFunction dial) {
  std::unique_ptr<EgressForwarder> self(new EgressForwarder(std::move(dial)));
  self->wake_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!self->wake_.valid()) return Status::ResourceExhausted("eventfd: " + ErrnoText(errno));
  for (const EgressRoute& route : routes) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(route.port);
    if (::inet_pton(AF_INET, route.address.c_str(), &address.sin_addr) != 1 ||
        (ntohl(address.sin_addr.s_addr) >> 24) != 127 || route.port == 0) {
      return Status::InvalidArgument("egress route for " + route.endpoint +
                                     " needs a loopback IPv4 address and a port");
    }
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return Status::ResourceExhausted("socket: " + ErrnoText(errno));
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd.get(), 64) != 0) {
      return Status::Unavailable("cannot listen for egress to " + route.endpoint + " on " +
                                 route.address + ":" + std::to_string(route.port) + ": " +
                                 ErrnoText(errno));
    }
    self->listeners_.push_back({std::move(fd), route.endpoint});
  }
  self->acceptor_ = std::thread([raw = self.get()] { raw->AcceptLoop(); });
  return self;
}

EgressForwarder::~EgressForwarder() {
  Stop();
}

void EgressForwarder::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mutex_);  // a second caller waits for the first
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> relays;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    relays.swap(relays_);
  }
  for (std::thread& t : relays) t.join();
  listeners_.clear();
}

void EgressForwarder::AcceptLoop() {
  std::vector<pollfd> fds;
  for (const Listener& l : listeners_) fds.push_back({l.fd.get(), POLLIN, 0});
  fds.push_back({wake_.get(), POLLIN, 0});
  while (!stopping_.load()) {
    for (pollfd& p : fds) p.revents = 0;
    const int ready = ::poll(fds.data(), fds.size(), -1);
    if (ready < 0 && errno != EINTR) return;
    if (fds.back().revents != 0) return;  // woken: stopping
    for (size_t i = 0; i + 1 < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      UniqueFd inside(::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (!inside.valid()) continue;
      accepted_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_.load() || open_ >= kMaxConnections) continue;  // closes `inside`
      ++open_;
      relays_.emplace_back([this, fd = inside.Release(), endpoint = listeners_[i].endpoint] {
        Relay(UniqueFd(fd), endpoint);
      });
    }
  }
}

void EgressForwarder::Relay(UniqueFd inside, std::string endpoint) {
  Result<UniqueFd> outside = dial_(endpoint);
  if (outside.ok() && !stopping_.load()) {
    SetNonBlocking(inside.get());
    SetNonBlocking(outside->get());
    // A relay must not add latency: each Pump writes what one read returned,
    // so a message the source sent whole can leave in pieces, and Nagle would
    // hold the last piece until the peer's delayed ACK (≈ 40 ms on loopback),
    // once per round trip of a handshake. The endpoints coalesce their own
    // writes. Best effort: a socket that refuses still relays, only slower.
    const int one = 1;
    ::setsockopt(inside.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(outside->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Direction up{inside.get(), outside->get()};
    Direction down{outside->get(), inside.get()};
    bool healthy = true;
    while (healthy && !(up.done && down.done) && !stopping_.load()) {
      healthy = Pump(up) && Pump(down);
      if (!healthy || (up.done && down.done)) break;
      // A side with nothing to wait for is left out (fd -1): a hung-up peer
      // would otherwise wake poll() at once, again and again.
      const short inside_events = WantedEvents(up, down);
      const short outside_events = WantedEvents(down, up);
      pollfd fds[3] = {{inside_events != 0 ? inside.get() : -1, inside_events, 0},
                       {outside_events != 0 ? outside->get() : -1, outside_events, 0},
                       {wake_.get(), POLLIN, 0}};
      const int ready = ::poll(fds, 3, -1);
      if (ready < 0 && errno != EINTR) break;
      if (fds[2].revents != 0) break;
      if ((fds[0].revents | fds[1].revents) & (POLLERR | POLLNVAL)) break;
    }
  }
  // A refused dial simply closes the connector's connection: to it, the
  // source reset the connection.
  std::lock_guard<std::mutex> lock(mutex_);
  --open_;
}

}  // namespace airlock::enclave
