#include "kernel/plugin_host/plugin_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace airlock::plugin_host {
namespace {

// The probe prints a line, then the configuration schema (at most 1 MiB,
// as the loader bounds it); anything longer is cut.
constexpr size_t kMaxProbeOutputBytes = 1024 * 1024 + 4096;

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

Result<ProbedPlugin> ProbeConnectorPlugin(const std::string& executable, const std::string& path,
                                          std::chrono::milliseconds timeout) {
  if (executable.empty() || ::access(executable.c_str(), X_OK) != 0) {
    return Status::NotFound("plugin probe " + executable + " is not an executable file");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Status::Internal(std::string("cannot make a pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  // Nothing of the kernel's (audit log, state store, sockets) reaches the probe.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> argv = {const_cast<char*>(executable.c_str()),
                             const_cast<char*>("--check-plugin"), const_cast<char*>(path.c_str()),
                             nullptr};
  // No secret of the kernel's environment reaches the probe: only the
  // sanitizer settings of an instrumented build pass.
  std::vector<std::string> env_text;
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name); value != nullptr) {
      env_text.push_back(std::string(name) + "=" + value);
    }
  }
  std::vector<char*> envp;
  for (auto& entry : env_text) envp.push_back(entry.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int spawned =
      ::posix_spawn(&pid, executable.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return Status::Internal("cannot start plugin probe " + executable + ": " +
                            std::strerror(spawned));
  }

  std::string output;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd poll_fd{pipe_fds[0], POLLIN, 0};
    const int ready = ::poll(&poll_fd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check above decides
    char buffer[4096];
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the probe is done
    if (output.size() < kMaxProbeOutputBytes) {
      output.append(buffer, std::min(static_cast<size_t>(n), kMaxProbeOutputBytes - output.size()));
    }
  }
  ::close(pipe_fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  output = Trimmed(std::move(output));
  if (timed_out) {
    return Status::Internal("plugin probe for " + path + " did not finish within " +
                            std::to_string(timeout.count()) + " ms");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    const size_t newline = output.find('\n');
    ProbedPlugin probed{output.substr(0, newline), nullptr};
    if (newline != std::string::npos) {
      probed.config_schema = nlohmann::json::parse(output.substr(newline + 1), nullptr, false);
      if (probed.config_schema.is_discarded()) {
        return Status::Internal("plugin probe for " + path + " printed a schema that is not JSON");
      }
    }
    return probed;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
    output = output.substr(0, output.find('\n'));
    return Status::FailedPrecondition(output.empty() ? "plugin " + path + " refused" : output);
  }
  return Status::Internal("plugin probe for " + path + " failed (" +
                          (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                               : "exit " + std::to_string(WEXITSTATUS(status))) +
                          ")" + (output.empty() ? "" : ": " + output));
}

}  // namespace airlock::plugin_host
