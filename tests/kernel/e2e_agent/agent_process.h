// A real airlock-agent as a child process of the test (bin/airlock-agent of
// the build), its output in a log file.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace airlock::test {

// A real airlock-agent child process.
class AgentProcess {
 public:
  // `wrapper` runs before the agent (e.g. {"/usr/bin/unshare", "--net", "--"}).
  AgentProcess(std::string config_path, std::string log_path, std::vector<std::string> wrapper = {})
      : config_path_(std::move(config_path)),
        log_path_(std::move(log_path)),
        wrapper_(std::move(wrapper)) {}
  ~AgentProcess() { Kill(); }

  bool Start() {
    const std::string binary = std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock-agent";
    std::vector<std::string> args = wrapper_;
    for (const char* a : {binary.c_str(), "--config", config_path_.c_str()}) args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    // Like a daemon started by its service manager: nothing of the test's
    // (its own connections to the kernel) leaks into the agent.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    const int rc = posix_spawn(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0;
  }

  // The exit code once the process ends within `timeout`, else -1.
  int WaitExit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    return WaitExit(std::chrono::seconds(20));
  }

  pid_t pid() const { return pid_; }
  std::string log() const {
    std::ifstream in(log_path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

 private:
  std::string config_path_;
  std::string log_path_;
  std::vector<std::string> wrapper_;
  pid_t pid_ = -1;
};

}  // namespace airlock::test
