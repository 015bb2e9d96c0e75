// The tunnel conformance kit against a tunnel broken on purpose
// (broken_tunnel.cc): run by ctest, which expects exactly the checks it
// breaks to fail (tests/plugins/tunnels/conformance/CMakeLists.txt).
#include "airlock/testing/tunnel_conformance.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using airlock::Result;
using airlock::Status;

// The broken tunnel's plain-text line protocol.
class LineClient final : public airlock::conformance::TunnelClient {
 public:
  ~LineClient() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Connect(const nlohmann::json& grant, const std::string& credential) override {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    at.sin_port = htons(grant.value("port", uint16_t{0}));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
      return Status::Unavailable("cannot connect");
    }
    const std::string hello = grant.value("request_id", "") + " " + credential + "\n";
    (void)!::write(fd_, hello.data(), hello.size());
    std::string line;
    if (!ReadLine(&line) || line != "OK") return Status::Unauthenticated(line);
    return Status::Ok();
  }
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) override {
    const std::string out = sql + "\n";
    if (::write(fd_, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
      return Status::Unavailable("connection gone");
    }
    std::vector<std::vector<std::string>> rows;
    std::string line;
    while (ReadLine(&line)) {
      if (line == ".") return rows;
      if (line.rfind("ERROR", 0) == 0) return Status::Unavailable(line);
      rows.push_back({line});
    }
    return Status::Unavailable("connection gone");
  }

 private:
  bool ReadLine(std::string* line) {
    line->clear();
    char c;
    while (::read(fd_, &c, 1) == 1) {
      if (c == '\n') return true;
      *line += c;
    }
    return false;
  }
  int fd_ = -1;
};

class BrokenFixture : public airlock::conformance::TunnelFixture {
 public:
  Result<airlock::conformance::TunnelSetup> Prepare() override {
    return airlock::conformance::TunnelSetup{BROKEN_TUNNEL_PATH, "{}",
                                             [] { return std::make_unique<LineClient>(); }};
  }
};

}  // namespace

AIRLOCK_TUNNEL_CONFORMANCE_SUITE(Broken, BrokenFixture);
