// One run of the CLI (or another program) in a test, as a child process
// without a shell: its stdin fed, its stdout and stderr collected; the
// environment the test's own minus AIRLOCK_* and PG*, plus what it is given.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

extern char** environ;

namespace airlock::test {

class Spawned {
 public:
  Spawned(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::string& input) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('='));
      if (name.rfind("AIRLOCK_", 0) == 0 || name.rfind("PG", 0) == 0 || env.count(name)) continue;
      env_text.push_back(entry);
    }
    for (const auto& [name, value] : env) env_text.push_back(name + "=" + value);
    std::vector<char*> envp, args;
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> words = argv;
    for (auto& w : words) args.push_back(w.data());
    args.push_back(nullptr);
    const int spawned = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    if (spawned != 0) {
      pid_ = -1;
      ::close(in[1]);
      ::close(out[0]);
      ::close(err[0]);
      return;
    }
    if (!input.empty()) (void)!::write(in[1], input.data(), input.size());
    ::close(in[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Spawned() {
    if (pid_ > 0 && code_ == kRunning) {
      ::kill(pid_, SIGKILL);
      Finish(std::chrono::seconds(5));
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  pid_t pid() const { return pid_; }

  // Reads until the child exits (or `timeout`); its exit code, -1 if it
  // did not exit in time.
  int Finish(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    if (!Pump(std::chrono::steady_clock::now() + timeout, nullptr)) return -1;
    int status = 0;
    if (pid_ > 0 && code_ == kRunning && ::waitpid(pid_, &status, 0) == pid_) {
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return code_;
  }

  // Reads while the child runs until its stderr holds `needle` (true) or
  // `timeout` passes or the child closed its output (false).
  bool WaitForErr(const std::string& needle, std::chrono::milliseconds timeout) {
    return Pump(std::chrono::steady_clock::now() + timeout,
                [&] { return err_.find(needle) != std::string::npos; }) &&
           err_.find(needle) != std::string::npos;
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // Reads stdout and stderr until both are closed or `enough` says so
  // (true), or `deadline` passes (false).
  bool Pump(std::chrono::steady_clock::time_point deadline, const std::function<bool()>& enough) {
    while (out_fd_ >= 0 || err_fd_ >= 0) {
      if (enough && enough()) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
      if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        int& fd = i == 0 ? out_fd_ : err_fd_;
        if (fd < 0 || fds[i].revents == 0) continue;
        char buffer[4096];
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) {
          ::close(fd);
          fd = -1;
        } else {
          (i == 0 ? out_ : err_).append(buffer, static_cast<size_t>(n));
        }
      }
    }
    return true;
  }

  static constexpr int kRunning = -1000;
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  int code_ = kRunning;
  std::string out_, err_;
};

}  // namespace airlock::test
