// Configuration of the http-decision policy backend: where the decision
// service lives (an Open Policy Agent compatible REST data API), how long to
// wait for it, how much to read from it, and how to authenticate to it.
#pragma once

#include <cstdint>
#include <string>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::policy::http_decision {

struct DecisionServiceConfig {
  bool tls = false;           // https:// URL
  std::string host;           // name or IP literal (no brackets)
  std::string port;           // decimal
  std::string base_path;      // "" or "/prefix" (no trailing slash)
  std::string decision_path;  // "airlock/decision"
  std::string target;         // base_path + "/v1/data/" + decision_path
  int64_t connect_timeout_ms = 1000;
  int64_t timeout_ms = 3000;  // the whole exchange, connect included
  int64_t max_response_bytes = 1 << 20;
  int64_t max_connections = 4;      // pooled keep-alive connections = concurrent calls
  std::string ca_file;              // PEM CA bundle; empty = system trust store
  std::string server_name;          // TLS name to verify; empty = host
  std::string bearer_token_secret;  // secret reference (env:NAME, file:/path), or empty
};

// Validates `j` in full; InvalidArgument names the key. Relative ca_file
// paths are kept as given (the caller resolves them against the host).
Result<DecisionServiceConfig> ParseConfig(const Json& j);

}  // namespace airlock::policy::http_decision
