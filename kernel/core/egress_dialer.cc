#include "kernel/core/egress_dialer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <set>

namespace airlock {
namespace {

using Clock = std::chrono::steady_clock;

bool SplitEndpoint(const std::string& endpoint, std::string* host, std::string* port) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size()) return false;
  *host = endpoint.substr(0, colon);
  *port = endpoint.substr(colon + 1);
  return true;
}

bool IsIpv4Literal(const std::string& host) {
  in_addr parsed{};
  return ::inet_pton(AF_INET, host.c_str(), &parsed) == 1;
}

// Connects `fd` (non-blocking) to `address`, waiting until `deadline`.
bool ConnectBefore(int fd, const addrinfo& address, Clock::time_point deadline) {
  if (::connect(fd, address.ai_addr, address.ai_addrlen) == 0) return true;
  if (errno != EINPROGRESS) return false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    int error = 0;
    socklen_t length = sizeof error;
    return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
  }
}

}  // namespace

std::vector<enclave::EgressRoute> PlanEgressRoutes(const std::vector<std::string>& endpoints) {
  std::vector<enclave::EgressRoute> routes;
  std::set<std::string> seen;
  std::map<std::string, std::string> host_addresses;
  int next_host = 2;
  for (const std::string& endpoint : endpoints) {
    std::string host, port;
    if (!seen.insert(endpoint).second || !SplitEndpoint(endpoint, &host, &port)) continue;
    enclave::EgressRoute route;
    route.endpoint = endpoint;
    route.port = static_cast<uint16_t>(std::stoi(port));
    if (IsIpv4Literal(host)) {
      route.address = host;
    } else {
      auto [it, added] = host_addresses.emplace(host, "");
      if (added) it->second = "127.0.0." + std::to_string(next_host++);
      route.address = it->second;
    }
    routes.push_back(std::move(route));
  }
  return routes;
}

nlohmann::json EgressRoutesJson(const std::vector<enclave::EgressRoute>& routes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& route : routes) {
    std::string host, port;
    SplitEndpoint(route.endpoint, &host, &port);
    out.push_back({{"endpoint", route.endpoint},
                   {"host", host},
                   {"port", route.port},
                   {"address", route.address}});
  }
  return out;
}

Result<enclave::UniqueFd> DialTcp(const std::string& endpoint, std::chrono::milliseconds timeout) {
  std::string host, port;
  if (!SplitEndpoint(endpoint, &host, &port)) {
    return Status::InvalidArgument("egress endpoint is not host:port");
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return Status::Unavailable("cannot resolve " + endpoint);
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, ::freeaddrinfo);
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    enclave::UniqueFd fd(
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd.valid()) continue;
    if (!ConnectBefore(fd.get(), *a, deadline)) continue;
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    // The socket is handed to an enclave's egress relay, which forwards bytes
    // as they come: no Nagle delay on top of the source's own (see
    // kernel/enclave/egress_forwarder.cc). Best effort.
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  return Status::Unavailable("cannot connect to " + endpoint);
}

}  // namespace airlock
