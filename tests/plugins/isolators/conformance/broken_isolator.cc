// A deliberately broken isolator, to prove the conformance kit can fail: it
// reports namespaces and a seccomp filter it never applies (the enclave runs
// as a plain child process), and it leaves its enclaves running when it is
// destroyed (the kernel exits).
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "airlock/cpp/plugin.hpp"

extern char** environ;

namespace {

class PlainChild final : public airlock::sdk::Enclave {
 public:
  explicit PlainChild(pid_t pid) : pid(pid) {}
  pid_t pid;
};

class BrokenIsolator final : public airlock::sdk::Isolator {
 public:
  static airlock::Result<std::unique_ptr<BrokenIsolator>> Create(const airlock::Json& config,
                                                                 const airlock::sdk::Host& host) {
    if (!config.is_object()) return airlock::Status::InvalidArgument("config must be an object");
    return std::make_unique<BrokenIsolator>(host.EnclaveExecutable());
  }
  explicit BrokenIsolator(std::string executable) : executable_(std::move(executable)) {}

  airlock::Result<airlock::sdk::EnclaveLaunch> Provision(const airlock::Json& spec) override {
    if (!spec.is_object() || !spec.value("request_id", airlock::Json()).is_string()) {
      return airlock::Status::InvalidArgument("spec.request_id must be a string");
    }
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
      return airlock::Status::ResourceExhausted("socketpair failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, ends[1], 3);
    std::string program = executable_, flag = "--fd", fd = "3";
    char* argv[] = {program.data(), flag.data(), fd.data(), nullptr};
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, executable_.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(ends[1]);
    if (spawned != 0) {
      ::close(ends[0]);
      return airlock::Status::Unavailable("cannot start the enclave executable");
    }
    airlock::sdk::EnclaveLaunch launch;
    launch.control_fd = ends[0];
    launch.enclave = std::make_unique<PlainChild>(pid);
    return launch;
  }

  airlock::Status Terminate(airlock::sdk::Enclave& enclave) override {
    auto& child = static_cast<PlainChild&>(enclave);
    ::kill(child.pid, SIGKILL);
    ::waitpid(child.pid, nullptr, 0);
    return airlock::Status::Ok();
  }

  airlock::Json DescribeIsolation() override {
    return {
        {"isolation", "process"},
        {"mechanisms", {{"pid_namespace", true}, {"network_namespace", true}, {"seccomp", true}}},
        {"development_only", false}};
  }

 private:
  const std::string executable_;
};

}  // namespace

AIRLOCK_ISOLATOR_PLUGIN(BrokenIsolator, "broken-isolator", "0.0.1",
                        "Fails the isolator conformance kit on purpose", nullptr)
