// Runs a program with an argument vector (no shell) and captures its output.
// Internal to the PostgreSQL test fixture.
#pragma once

#include <string>
#include <vector>

namespace airlock::test::pg_internal {

struct ProcessResult {
  int exit_code = -1;  // -1 when the process did not exit normally
  std::string out;
  std::string err;
};

// Runs argv[0] (searched in PATH) with `env_overrides` ("NAME=value")
// added to this process's environment. Throws std::runtime_error when the
// program cannot be started.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env_overrides = {});

}  // namespace airlock::test::pg_internal
