// Runs a shell command line to completion (real client programs: psql,
// node, python3, java). Passwords go in the command's environment
// assignments, never its arguments.
#pragma once

#include <string>

namespace airlock::test {

struct ShellResult {
  int exit_code = -1;  // -1 when it could not run or did not exit normally
  std::string output;  // stdout (append 2>&1 to the command for stderr too)
};

ShellResult RunShell(const std::string& command);

}  // namespace airlock::test
