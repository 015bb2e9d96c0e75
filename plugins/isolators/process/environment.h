// The environment an enclave process starts with.
//
// Not the kernel's: that holds the `env:` credentials of every source. An
// enclave inherits only the variables its approved datasets' `env:` secret
// references name (the spec's `secret_env`), copied from this process's
// environment, and otherwise starts empty: airlock-enclave needs no PATH,
// HOME, locale or TZ (it execs nothing; SQLite's localtime reads the bound
// /etc/localtime). Sanitizer builds also pass ASAN_OPTIONS, UBSAN_OPTIONS and
// LSAN_OPTIONS, which carry no secrets and keep the enclave's reports behaving
// like the kernel's.
#pragma once

#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::isolators::process {

// Bounds on spec.secret_env.
inline constexpr size_t kMaxSecretEnv = 256;
inline constexpr size_t kMaxEnvNameBytes = 128;

// spec.secret_env: an optional array of variable names
// ([A-Za-z_][A-Za-z0-9_]*, at most kMaxEnvNameBytes, at most kMaxSecretEnv of
// them). InvalidArgument naming the entry at fault.
Status ParseSecretEnv(const Json& spec, std::vector<std::string>* names);

// NAME=value entries and the NULL-terminated array execve takes. The values
// are wiped when it is destroyed. Not copyable or movable: the array points
// into the entries.
class EnclaveEnvironment {
 public:
  // `names` as ParseSecretEnv returns them; a name this process has no value
  // for is left out (the enclave then reports the reference as unset).
  explicit EnclaveEnvironment(const std::vector<std::string>& names);
  ~EnclaveEnvironment();
  EnclaveEnvironment(const EnclaveEnvironment&) = delete;
  EnclaveEnvironment& operator=(const EnclaveEnvironment&) = delete;

  char* const* envp() const { return pointers_.data(); }
  size_t size() const { return entries_.size(); }

 private:
  void Add(const std::string& name);
  std::vector<std::string> entries_;  // reserved up front: never reallocated
  std::vector<char*> pointers_;
};

}  // namespace airlock::isolators::process
