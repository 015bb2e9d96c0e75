// Readers for the patterns every plugin's configuration repeats: the
// unknown-key check, booleans, bounded integers and durations, secret
// references, files relative to the configuration. Each error names the key
// as "<where>.<key> ..." (where: "tunnel configuration", "connector
// configuration", ...), never quoting a secret. Header-only; throw nothing.
//
//   AIRLOCK_RETURN_IF_ERROR(config_read::KnownKeys(j, {"port", "tls"}, kWhere));
//   AIRLOCK_RETURN_IF_ERROR(config_read::Bounded(j, "port", 0, 65535, &port, kWhere));
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::sdk::config_read {

// InvalidArgument "<where>: unknown key '<key>'" for the first member of the
// object `j` not in `known`: a misspelt setting must not fall back to a
// default silently.
inline Status KnownKeys(const Json& j, std::initializer_list<std::string_view> known,
                        std::string_view where) {
  for (const auto& item : j.items()) {
    bool found = false;
    for (std::string_view key : known) found = found || key == item.key();
    if (!found) {
      return Status::InvalidArgument(std::string(where) + ": unknown key '" + item.key() + "'");
    }
  }
  return Status::Ok();
}

// The same, with the known keys in any container of strings (a std::set).
template <typename Keys>
Status KnownKeys(const Json& j, const Keys& known, std::string_view where) {
  for (const auto& item : j.items()) {
    bool found = false;
    for (const auto& key : known) found = found || std::string_view(key) == item.key();
    if (!found) {
      return Status::InvalidArgument(std::string(where) + ": unknown key '" + item.key() + "'");
    }
  }
  return Status::Ok();
}

// An optional boolean; *out keeps its value when the key is absent or null.
inline Status Bool(const Json& j, std::string_view key, bool* out, std::string_view where) {
  return json_read::Member(j, key, false, where, "true or false", [&](const Json& v) {
    if (!v.is_boolean()) return false;
    *out = v.get<bool>();
    return true;
  });
}

// An optional integer in [min, max]; *out keeps its value when absent.
template <typename T>
Status Bounded(const Json& j, std::string_view key, int64_t min, int64_t max, T* out,
               std::string_view where) {
  int64_t value = static_cast<int64_t>(*out);
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(j, key, &value, false, where));
  if (value < min || value > max) {
    return json_read::Bad(where, key,
                          "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  *out = static_cast<T>(value);
  return Status::Ok();
}

// An optional duration in milliseconds ("<key>" ends in _ms) in [min, max].
inline Status Millis(const Json& j, std::string_view key, int64_t min, int64_t max,
                     std::chrono::milliseconds* out, std::string_view where) {
  int64_t ms = out->count();
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, key, min, max, &ms, where));
  *out = std::chrono::milliseconds(ms);
  return Status::Ok();
}

// A secret reference ("env:NAME" or "file:/path"), never a secret itself:
// the value is resolved through Host::ResolveSecret when needed, and an
// inline value is refused without being quoted.
inline Status SecretReference(const Json& j, std::string_view key, std::string* out, bool required,
                              std::string_view where) {
  std::string value;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, key, &value, required, where));
  if (value.empty() && !required) return Status::Ok();
  // The host resolves file: references by absolute path only.
  const bool reference = (value.rfind("env:", 0) == 0 && value.size() > 4) ||
                         (value.rfind("file:/", 0) == 0 && value.size() > 6);
  if (!reference) {
    return json_read::Bad(where, key,
                          "must be a secret reference (env:NAME or file:/path), not the secret");
  }
  *out = std::move(value);
  return Status::Ok();
}

// A path; a relative one is taken relative to `base_dir` (the directory of
// the configuration that names it, when the host says so; empty: as is).
inline Status File(const Json& j, std::string_view key, const std::string& base_dir,
                   std::string* out, bool required, std::string_view where) {
  std::string path;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, key, &path, required, where));
  if (path.empty()) {
    return required ? json_read::Bad(where, key, "must not be empty") : Status::Ok();
  }
  *out = path.front() == '/' || base_dir.empty() ? path : base_dir + "/" + path;
  return Status::Ok();
}

}  // namespace airlock::sdk::config_read
