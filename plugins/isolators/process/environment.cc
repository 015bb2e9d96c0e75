#include "environment.h"

#include <string.h>

#include <array>
#include <cstdlib>
#include <cstring>

namespace airlock::isolators::process {
namespace {

#if defined(AIRLOCK_SANITIZED_BUILD)
constexpr std::array<const char*, 3> kPassedThrough = {"ASAN_OPTIONS", "UBSAN_OPTIONS",
                                                       "LSAN_OPTIONS"};
#else
constexpr std::array<const char*, 0> kPassedThrough = {};
#endif

bool IsEnvName(const std::string& name) {
  if (name.empty() || name.size() > kMaxEnvNameBytes) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace

Status ParseSecretEnv(const Json& spec, std::vector<std::string>* names) {
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(spec, "secret_env", names, false, "spec"));
  if (names->size() > kMaxSecretEnv) {
    return Status::InvalidArgument("spec.secret_env has more than " +
                                   std::to_string(kMaxSecretEnv) + " names");
  }
  for (size_t i = 0; i < names->size(); ++i) {
    if (!IsEnvName((*names)[i])) {
      return Status::InvalidArgument("spec.secret_env[" + std::to_string(i) +
                                     "] is not an environment variable name");
    }
  }
  return Status::Ok();
}

EnclaveEnvironment::EnclaveEnvironment(const std::vector<std::string>& names) {
  entries_.reserve(names.size() + kPassedThrough.size());
  for (const std::string& name : names) Add(name);
  for (const char* name : kPassedThrough) Add(name);
  pointers_.reserve(entries_.size() + 1);
  for (std::string& entry : entries_) pointers_.push_back(entry.data());
  pointers_.push_back(nullptr);
}

EnclaveEnvironment::~EnclaveEnvironment() {
  for (std::string& entry : entries_) ::explicit_bzero(entry.data(), entry.size());
}

void EnclaveEnvironment::Add(const std::string& name) {
  const size_t prefix = name.size() + 1;
  for (const std::string& entry : entries_) {
    if (entry.compare(0, prefix, name + "=") == 0) return;  // named twice
  }
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return;
  // Built in place: no temporary copy of the value is left behind.
  std::string& entry = entries_.emplace_back();
  entry.reserve(prefix + std::strlen(value));
  entry.append(name).append(1, '=').append(value);
}

}  // namespace airlock::isolators::process
