// "plain-process": an enclave isolator that starts each enclave as a plain
// child process, the host's airlock-enclave executable on one end of a
// socketpair, with no sandbox of any kind. Written only against the
// installed SDK headers; it shows the isolator contract: provision hands the
// kernel a connected stream socket, terminate kills and reaps, destroying
// the isolator ends what it started, and describe_isolation tells the truth
// ("isolation": "none", "development_only": true).
//
// Configuration: {"enclave_executable": "<path>"}, optional: the executable
// to start instead of the host's (relative to the configuration's directory).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <airlock/cpp/config_read.hpp>
#include <airlock/cpp/plugin.hpp>

namespace plain_process {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace config_read = airlock::sdk::config_read;
namespace json_read = airlock::json_read;

constexpr std::string_view kWhere = "plain-process configuration";
constexpr size_t kMaxRequestIdLength = 256;
constexpr size_t kMaxSecretEnv = 256;
constexpr int kEnclaveFd = 3;  // the enclave's end of the control socket: airlock-enclave --fd 3

std::string ErrnoText(int err) {
  return std::strerror(err);
}

// A variable name as POSIX shells spell them.
bool IsVariableName(const std::string& name) {
  if (name.empty() || name.size() > 128 || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// The enclave's environment: only the variables spec.secret_env names (the
// env: references of its connectors), copied from this process.
Result<std::vector<std::string>> EnclaveEnvironment(const Json& spec) {
  std::vector<std::string> names;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(spec, "secret_env", &names, false, "spec"));
  if (names.size() > kMaxSecretEnv) {
    return Status::InvalidArgument("spec.secret_env names more than 256 variables");
  }
  std::vector<std::string> environment;
  for (const auto& name : names) {
    if (!IsVariableName(name)) {
      return Status::InvalidArgument("spec.secret_env holds a name that is not a variable name");
    }
    if (const char* value = ::getenv(name.c_str())) environment.push_back(name + "=" + value);
  }
  return environment;
}

class PlainProcessEnclave : public airlock::sdk::Enclave {
 public:
  PlainProcessEnclave(pid_t pid, std::string request_id)
      : pid(pid), request_id(std::move(request_id)) {}
  const pid_t pid;
  const std::string request_id;
};

// Kills the enclave's process group (the enclave and whatever it started)
// and reaps the enclave. Safe for a process that already exited: it stays a
// zombie until reaped here, so its pid cannot have been reused.
void KillAndReap(pid_t pid) {
  if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

class PlainProcessIsolator : public airlock::sdk::Isolator {
 public:
  static Result<std::unique_ptr<PlainProcessIsolator>> Create(const Json& config,
                                                              const airlock::sdk::Host& host) {
    AIRLOCK_RETURN_IF_ERROR(CheckConfig(config, host));
    std::string executable = host.EnclaveExecutable();
    AIRLOCK_RETURN_IF_ERROR(config_read::File(config, "enclave_executable", host.config_dir(),
                                              &executable, false, kWhere));
    host.Warn(
        "plain-process isolator is DEVELOPMENT ONLY and provides NO ISOLATION: enclaves run "
        "as ordinary child processes with this process's user, filesystem and network");
    if (executable.empty()) host.Warn("no enclave executable is known; provisioning will fail");
    return std::unique_ptr<PlainProcessIsolator>(
        new PlainProcessIsolator(std::move(executable), host));
  }

  static Status CheckConfig(const Json& config, const airlock::sdk::Host& host) {
    if (!config.is_object()) {
      return Status::InvalidArgument(std::string(kWhere) + " must be a JSON object");
    }
    AIRLOCK_RETURN_IF_ERROR(config_read::KnownKeys(config, {"enclave_executable"}, kWhere));
    std::string executable;
    return config_read::File(config, "enclave_executable", host.config_dir(), &executable, false,
                             kWhere);
  }

  // The kernel exits: every enclave still running ends with the isolator.
  ~PlainProcessIsolator() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (pid_t pid : running_) KillAndReap(pid);
  }

  Result<airlock::sdk::EnclaveLaunch> Provision(const Json& spec) override {
    if (!spec.is_object()) return Status::InvalidArgument("enclave spec must be a JSON object");
    std::string request_id;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(spec, "request_id", &request_id, true, "spec"));
    if (request_id.empty() || request_id.size() > kMaxRequestIdLength) {
      return Status::InvalidArgument("spec.request_id must hold 1 to 256 bytes");
    }
    AIRLOCK_ASSIGN_OR_RETURN(std::vector<std::string> environment, EnclaveEnvironment(spec));
    if (executable_.empty()) {
      return Status::FailedPrecondition("no enclave executable is known");
    }
    if (!spec.value("egress", Json::array()).empty() ||
        !spec.value("limits", Json::object()).empty()) {
      host_.Warn("enclave for request '" + request_id +
                 "': limits and egress rules are NOT enforced by the plain-process isolator");
    }

    // Everything the child needs is made before fork: between fork and exec
    // it may only make async-signal-safe calls.
    std::string program = executable_, flag = "--fd", fd_text = std::to_string(kEnclaveFd);
    char* argv[] = {program.data(), flag.data(), fd_text.data(), nullptr};
    std::vector<char*> envp;
    for (auto& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);

    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
      return Status::ResourceExhausted("socketpair failed: " + ErrnoText(errno));
    }
    // The child writes its exec errno here; exec closes it (no bytes: success).
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
      const int err = errno;
      ::close(ends[0]);
      ::close(ends[1]);
      return Status::ResourceExhausted("pipe failed: " + ErrnoText(err));
    }

    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);  // its own process group, so terminate reaches its children too
      // dup2 clears close-on-exec on the copy; a descriptor already at 3 keeps
      // the flag, so clear it there.
      if (ends[1] == kEnclaveFd) {
        ::fcntl(kEnclaveFd, F_SETFD, 0);
      } else {
        ::dup2(ends[1], kEnclaveFd);
      }
      ::execve(argv[0], argv, envp.data());
      const int err = errno;
      ssize_t ignored = ::write(report[1], &err, sizeof err);
      (void)ignored;
      ::_exit(127);
    }
    const int fork_errno = errno;
    ::close(ends[1]);
    ::close(report[1]);
    if (pid < 0) {
      ::close(ends[0]);
      ::close(report[0]);
      return Status::ResourceExhausted("fork failed: " + ErrnoText(fork_errno));
    }
    ::setpgid(pid, pid);  // also here: terminate may come before the child ran

    int exec_errno = 0;
    ssize_t got;
    while ((got = ::read(report[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    ::close(report[0]);
    if (got > 0) {
      ::close(ends[0]);
      KillAndReap(pid);
      return Status::Unavailable("cannot start the enclave executable " + executable_ + ": " +
                                 ErrnoText(exec_errno));
    }

    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.insert(pid);
    }
    host_.Info("enclave for request '" + request_id + "' started as process " +
               std::to_string(pid) + " (no isolation)");
    airlock::sdk::EnclaveLaunch launch;
    launch.control_fd = ends[0];
    launch.enclave = std::make_unique<PlainProcessEnclave>(pid, std::move(request_id));
    return launch;
  }

  Status Terminate(airlock::sdk::Enclave& enclave) override {
    auto* ours = dynamic_cast<PlainProcessEnclave*>(&enclave);
    if (ours == nullptr) {
      return Status::InvalidArgument("the enclave was not started by the plain-process isolator");
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (running_.erase(ours->pid) == 0) return Status::Ok();  // already ended
    }
    KillAndReap(ours->pid);
    host_.Info("enclave for request '" + ours->request_id + "' terminated");
    return Status::Ok();
  }

  Json DescribeIsolation() override {
    return {{"isolator", "plain-process"},
            {"isolation", "none"},
            {"development_only", true},
            {"mechanisms", Json::object()},
            {"egress", "unrestricted"},
            {"warning",
             "DEVELOPMENT ONLY: enclaves are plain child processes with the kernel's user, "
             "filesystem and network; limits and egress rules are not enforced"}};
  }

  // Nothing to reap: an enclave whose kernel is gone reads end of file on its
  // control socket and exits.

 private:
  PlainProcessIsolator(std::string executable, airlock::sdk::Host host)
      : executable_(std::move(executable)), host_(std::move(host)) {}

  const std::string executable_;
  const airlock::sdk::Host host_;
  std::mutex mutex_;
  std::set<pid_t> running_;  // guarded by mutex_: started, not yet terminated
};

}  // namespace plain_process

AIRLOCK_ISOLATOR_PLUGIN(plain_process::PlainProcessIsolator, "plain-process", "1.0.0",
                        "DEVELOPMENT ONLY: each enclave a plain child process, no isolation",
                        R"({"type":"object","properties":{)"
                        R"("enclave_executable":{"type":"string"}},)"
                        R"("additionalProperties":false})")
