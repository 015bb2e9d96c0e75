// A deliberately broken tunnel, to prove the conformance kit can fail: a
// plain-text line protocol (like sdk/examples/out_of_tree_tunnel, without
// TLS) that ignores the access window, keeps serving sessions after their
// endpoint closed, and closes without waiting for a running query.
//   client: "<request id> <credential>\n", then one SQL statement a line
//   server: "OK\n"; per statement the cells, one row a line, then ".\n"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/plugin.hpp"

namespace {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace sdk = airlock::sdk;

struct Endpoint {
  std::string credential;
  sdk::QueryChannel channel;
};

class Rows final : public sdk::BatchConsumer {
 public:
  Status OnSchema(airlock::arrow::OwnedSchema schema) override {
    schema_ = std::move(schema);
    return Status::Ok();
  }
  Status OnBatch(airlock::arrow::OwnedArray batch) override {
    AIRLOCK_ASSIGN_OR_RETURN(auto view,
                             airlock::arrow::BatchView::Make(*schema_.get(), *batch.get()));
    for (size_t row = 0; row < view.num_rows(); ++row) {
      text += std::to_string(view.GetInt64(0, row)) + "\n";
    }
    return Status::Ok();
  }
  std::string text;

 private:
  airlock::arrow::OwnedSchema schema_;
};

class BrokenTunnel final : public sdk::TunnelTransport {
 public:
  static Result<std::unique_ptr<BrokenTunnel>> Create(const Json&, const sdk::Host&) {
    auto made = std::make_unique<BrokenTunnel>();
    made->listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof at;
    if (::bind(made->listener_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
        ::listen(made->listener_, 16) != 0 ||
        ::getsockname(made->listener_, reinterpret_cast<sockaddr*>(&at), &length) != 0) {
      return Status::Unavailable("cannot listen");
    }
    made->port_ = ntohs(at.sin_port);
    made->accepting_ = std::thread([tunnel = made.get()] { tunnel->Accept(); });
    return made;
  }

  ~BrokenTunnel() override {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    accepting_.join();
    ::close(listener_);
    std::lock_guard lock(mu_);
    for (auto& [fd, thread] : sessions_) {
      ::shutdown(fd, SHUT_RDWR);
      thread.join();
      ::close(fd);
    }
  }

  Result<sdk::TunnelOpening> Open(const Json& spec, sdk::QueryChannel channel) override {
    const std::string id = spec.value("request_id", "");
    const std::string credential = "broken-credential-" + id;
    {
      std::lock_guard lock(mu_);
      endpoints_[id] = Endpoint{credential, channel};  // never removed, window never checked
    }
    sdk::TunnelOpening opening;
    opening.grant = {{"url", "broken://127.0.0.1:" + std::to_string(port_) + "/" + id},
                     {"port", port_},
                     {"request_id", id},
                     {"credential", credential}};
    opening.endpoint = std::make_unique<sdk::TunnelEndpoint>();  // closing does nothing
    return opening;
  }

 private:
  void Accept() {
    while (!stopping_) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      sessions_.emplace_back(fd, std::thread([this, fd] { Serve(fd); }));
    }
  }

  static bool ReadLine(int fd, std::string* line) {
    line->clear();
    char c;
    while (::read(fd, &c, 1) == 1) {
      if (c == '\n') return true;
      *line += c;
    }
    return false;
  }

  void Serve(int fd) {
    std::string line;
    if (!ReadLine(fd, &line)) return;
    const size_t space = line.find(' ');
    Endpoint endpoint;
    {
      std::lock_guard lock(mu_);
      auto it = endpoints_.find(line.substr(0, space));
      if (space == std::string::npos || it == endpoints_.end() ||
          it->second.credential != line.substr(space + 1)) {
        (void)!::write(fd, "ERROR refused\n", 14);
        return;
      }
      endpoint = it->second;
    }
    (void)!::write(fd, "OK\n", 3);
    while (ReadLine(fd, &line)) {
      Rows rows;
      const Status ran = endpoint.channel.Query(line, rows);
      const std::string out = ran.ok() ? rows.text + ".\n" : "ERROR " + ran.message() + "\n";
      if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return;
    }
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accepting_;
  std::mutex mu_;
  std::map<std::string, Endpoint> endpoints_;        // guarded by mu_
  std::list<std::pair<int, std::thread>> sessions_;  // guarded by mu_
};

}  // namespace

AIRLOCK_TUNNEL_PLUGIN(BrokenTunnel, "broken-tunnel", "0.0.1",
                      "Fails the tunnel conformance kit on purpose", nullptr)
