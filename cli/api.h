// The kernel's HTTP API as the CLI calls it: the stored server, CA and
// token; the kernel's {"error","message"} answers turned into Status.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "cli/settings.h"

namespace airlock::cli {

class Api {
 public:
  explicit Api(Settings settings) : settings_(std::move(settings)) {}

  // FailedPrecondition (not signed in) unless a server and a token are set.
  Status Ready() const;
  Result<nlohmann::json> Get(const std::string& path) const;
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& body) const;

  const Settings& settings() const { return settings_; }

 private:
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const std::string& body) const;
  Settings settings_;
};

// A status for an HTTP answer that is not 2xx: the server's message, with
// a code the exit code follows (ExitCodeFor).
Status StatusForAnswer(long http_status, const std::string& body);

// The documented exit code of a failure (docs/cli.md).
int ExitCodeFor(const Status& status);

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotSignedIn = 3;
inline constexpr int kExitRefused = 4;
inline constexpr int kExitNotFound = 5;
inline constexpr int kExitConflict = 6;
inline constexpr int kExitUnreachable = 7;
inline constexpr int kExitNoAccess = 8;

}  // namespace airlock::cli
