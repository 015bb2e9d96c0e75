// Runs a real airlockd as a child process for end-to-end tests: writes its
// configuration into a temp directory, starts it on an ephemeral port and
// stops (or kills) it by PID.
#pragma once

#include <sys/types.h>

#include <string>

#include <nlohmann/json.hpp>

namespace airlock::test {

class KernelProcess {
 public:
  // `config` is written to <dir>/airlock.json; the kernel listens on port 0.
  KernelProcess(std::string dir, nlohmann::json config);
  ~KernelProcess();
  KernelProcess(const KernelProcess&) = delete;
  KernelProcess& operator=(const KernelProcess&) = delete;

  // Starts the kernel and waits until it listens; false (with its log in
  // `log()`) if it exited instead.
  bool Start();
  // SIGTERM and wait: a graceful stop.
  int Stop();
  // SIGKILL and wait: a crash.
  void Kill();

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/airlock.json"; }

 private:
  std::string dir_;
  nlohmann::json config_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int starts_ = 0;
};

// Runs `airlockd <args>` to completion; returns the exit code and output.
int RunAirlockd(const std::vector<std::string>& args, std::string* output);

}  // namespace airlock::test
