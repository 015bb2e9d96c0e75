// Test isolator: an "enclave" is a thread running the host's enclave runtime
// (host->enclave_serve) on one end of a socketpair; the host gets the other.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "airlock/cpp/plugin.hpp"

namespace {

using airlock::Result;
using airlock::Status;

class TestEnclave : public airlock::sdk::Enclave {
 public:
  TestEnclave(airlock::sdk::Host host, std::string request_id, int fd)
      : host_(std::move(host)), request_id_(std::move(request_id)), fd_(fd) {
    // The runtime gets its own descriptor (enclave_serve closes it); shutting
    // down fd_ ends the session without racing on descriptor numbers.
    const int served = ::dup(fd_);
    runtime_ = std::thread([this, served] { (void)host_.EnclaveServe(served); });
  }
  ~TestEnclave() override { Stop(); }

  void Stop() {
    if (fd_ < 0) return;
    ::shutdown(fd_, SHUT_RDWR);
    if (runtime_.joinable()) runtime_.join();
    ::close(fd_);
    fd_ = -1;
    (void)host_.Audit({{"event", "enclave.terminated"}, {"request_id", request_id_}});
  }

 private:
  airlock::sdk::Host host_;
  std::string request_id_;
  int fd_;
  std::thread runtime_;
};

class TestIsolator : public airlock::sdk::Isolator {
 public:
  static Result<std::unique_ptr<TestIsolator>> Create(const airlock::Json& /*config*/,
                                                      const airlock::sdk::Host& host) {
    auto made = std::make_unique<TestIsolator>();
    made->host_ = host;
    return made;
  }

  Result<airlock::sdk::EnclaveLaunch> Provision(const airlock::Json& spec) override {
    const std::string request_id = spec.value("request_id", "");
    if (request_id == "no-capacity") return Status::Unavailable("no capacity left");
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return Status::Internal("socketpair failed");
    }
    airlock::sdk::EnclaveLaunch launch;
    launch.enclave = std::make_unique<TestEnclave>(host_, request_id, fds[1]);
    launch.control_fd = fds[0];
    if (request_id == "bad-fd") {
      ::close(fds[0]);
      launch.control_fd = -1;
    } else if (request_id == "pipe-fd") {  // open, but not a socket
      ::close(fds[0]);
      int pipe_fds[2];
      if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::Internal("pipe failed");
      ::close(pipe_fds[1]);
      launch.control_fd = pipe_fds[0];
    }
    return launch;
  }

  Status Terminate(airlock::sdk::Enclave& enclave) override {
    static_cast<TestEnclave&>(enclave).Stop();
    return Status::Ok();
  }

  airlock::Json DescribeIsolation() override {
    return {
        {"isolation", "none"}, {"mechanisms", airlock::Json::object()}, {"development_only", true}};
  }

  Status ReapOrphans() override { return host_.Audit({{"event", "enclave.reaped"}, {"count", 0}}); }

 private:
  airlock::sdk::Host host_;
};

}  // namespace

AIRLOCK_ISOLATOR_PLUGIN(TestIsolator, "test-isolator", "0.1.0", "Threads as enclaves (tests only)",
                        nullptr)
