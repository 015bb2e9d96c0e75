// Configuration readers every notifier uses. Errors are InvalidArgument and
// name the key ("webhook configuration.timeout_ms must be between ...");
// none of them ever echoes a value that may be a secret.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::notifiers {

// Refuses members of `j` not in `known`.
Status CheckKeys(const Json& j, const std::set<std::string>& known, std::string_view where);

// An optional integer in [min, max]; `out` keeps its default when absent.
Status ReadBounded(const Json& j, std::string_view key, int64_t min, int64_t max, int64_t* out,
                   std::string_view where);

// An optional boolean; `out` keeps its default when absent.
Status ReadBool(const Json& j, std::string_view key, bool* out, std::string_view where);

// env:NAME or file:/path.
bool IsSecretReference(std::string_view reference);

// An optional secret reference; refused without echoing what was given.
Status ReadSecretReference(const Json& j, std::string_view key, bool required, std::string* out,
                           std::string_view where);

// Loads `path` (already resolved against the configuration directory) as a
// PEM bundle holding at least one certificate, so a typo is refused at
// start-up instead of at the first delivery.
Status CheckCaFile(const std::string& path, std::string_view where);

// The parts of a URL a notifier checks, as libcurl itself parses it.
struct UrlParts {
  std::string scheme;  // lowercase
  std::string host;    // without brackets
  bool has_credentials = false;
};

// Parses an absolute URL; nullopt-like failure as InvalidArgument with
// `what` (never the URL: it may be a secret).
Result<UrlParts> ParseUrl(std::string_view url, std::string_view what);

// 127.0.0.0/8, ::1 or "localhost".
bool IsLoopbackHost(std::string_view host);

// The default request timeout and its bounds, shared by every notifier.
inline constexpr int64_t kDefaultTimeoutMs = 10000;
inline constexpr int64_t kMaxTimeoutMs = 120000;

}  // namespace airlock::notifiers
