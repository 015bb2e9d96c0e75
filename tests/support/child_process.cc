#include "tests/support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace airlock::test {
namespace {

using Clock = std::chrono::steady_clock;

// Reaps `pid` once it exits, waiting at most `timeout`; true when reaped.
// waitpid has no timeout, a pidfd becomes readable when the process exits.
bool ReapWithin(pid_t pid, std::chrono::milliseconds timeout) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd pfd{pidfd, POLLIN, 0};
    int ready;
    do {
      ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    } while (ready < 0 && errno == EINTR);
    ::close(pidfd);
    if (ready == 0) return false;
  }
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return true;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           std::chrono::milliseconds ready_timeout) {
  if (argv.empty()) throw std::runtime_error("ChildProcess: empty argv");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  stdout_fd_ = fds[0];
  if (rc != 0) {
    ::close(stdout_fd_);
    pid_ = -1;
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  const auto deadline = Clock::now() + ready_timeout;
  while (ready_line_.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int ready = left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
    if (ready < 0 && errno == EINTR) continue;
    char buffer[256];
    const ssize_t n = ready > 0 ? ::read(stdout_fd_, buffer, sizeof buffer) : 0;
    if (n <= 0) {
      Stop();
      throw std::runtime_error(argv[0] + " did not report ready" +
                               (ready == 0 ? " in time" : " (it exited)"));
    }
    ready_line_.append(buffer, static_cast<size_t>(n));
  }
  ready_line_.resize(ready_line_.find('\n'));
}

ChildProcess::~ChildProcess() {
  Stop();
}

void ChildProcess::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    if (!ReapWithin(pid_, std::chrono::seconds(2))) {
      ::kill(pid_, SIGKILL);
      ReapWithin(pid_, std::chrono::seconds(10));
    }
    pid_ = -1;
  }
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

}  // namespace airlock::test
