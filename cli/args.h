// Command-line words as one command of the CLI reads them: positional
// arguments, --flag VALUE / --flag=VALUE (repeatable where the command says
// so), boolean --flags, and everything after "--" passed on untouched.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::cli {

struct FlagSpec {
  std::set<std::string> with_value;  // e.g. "--for"
  std::set<std::string> boolean;     // e.g. "--wait"
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> switches;
  std::vector<std::string> passthrough;  // after "--"

  bool Has(const std::string& flag) const { return switches.count(flag) > 0; }
  // The last value of `flag`, or `fallback`.
  std::string Value(const std::string& flag, const std::string& fallback = "") const;
  const std::vector<std::string>& All(const std::string& flag) const;
};

// InvalidArgument naming an unknown flag or a flag without its value.
Result<Args> ParseArgs(const std::vector<std::string>& words, const FlagSpec& spec);

// "90s", "15m", "2h", "1d" or whole seconds; InvalidArgument otherwise.
Result<int64_t> ParseDuration(const std::string& text);

}  // namespace airlock::cli
