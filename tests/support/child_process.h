// A long-running helper program for a test (an SMTP sink, a fake service):
// started without a shell, its first stdout line read as its "ready" word
// (a port, say), stopped by its PID (SIGTERM, then SIGKILL) and reaped when
// the object goes away. Its stderr goes to the test's stderr.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace airlock::test {

class ChildProcess {
 public:
  // Starts argv[0] (searched in PATH) and waits up to `ready_timeout` for its
  // first line on stdout. Throws std::runtime_error when it cannot be
  // started or says nothing in time (it is stopped first).
  ChildProcess(const std::vector<std::string>& argv, std::chrono::milliseconds ready_timeout);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The first stdout line, without its newline.
  const std::string& ready_line() const { return ready_line_; }
  // SIGTERM, up to two seconds' grace, SIGKILL; reaps it. Idempotent.
  void Stop();

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string ready_line_;
};

}  // namespace airlock::test
