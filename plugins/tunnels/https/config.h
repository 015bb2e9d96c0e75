// Configuration of the HTTPS tunnel transport: parsed and validated once, at
// create(). Every error names the offending key.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "airlock/cpp/connection_budget.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/tunnel_kit.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::tunnels::https {

using sdk::tunnel::TlsFiles;

struct HttpsTunnelConfig : sdk::tunnel::ListenerSettings {
  // listen_address, port, tls, allow_plaintext (development only: plain
  // HTTP), public_host: the listener (sdk::tunnel::ListenerSettings).
  uint64_t max_rows = 100000;     // per query result
  size_t max_body_bytes = 65536;  // per request body
  std::chrono::milliseconds query_timeout{30000};
  uint32_t rate_limit_per_minute = 600;  // per credential; 0 disables
  uint32_t max_concurrent_queries = 4;   // per credential: queries and schema lookups running
  // Tuning; rarely changed.
  unsigned io_threads = 2;
  unsigned query_threads = 4;
  // The connection budget (airlock/cpp/connection_budget.hpp): every open
  // connection, those without a valid credential yet (overall and per client
  // address), and the authenticated ones per endpoint.
  sdk::ConnectionLimits connections{/*max_connections=*/1024, /*max_preauth_connections=*/256,
                                    /*max_preauth_connections_per_address=*/64,
                                    /*max_connections_per_endpoint=*/32};
  // TLS handshake and each request header until the connection has presented
  // a valid credential.
  std::chrono::milliseconds preauth_timeout{5000};
  // Reading one request, keep-alive wait, once authenticated.
  std::chrono::milliseconds idle_timeout{60000};

  bool plaintext() const { return !tls.has_value(); }
};

// Parses and validates; unknown keys are refused (a typo must not silently
// fall back to a default such as plain HTTP).
Result<HttpsTunnelConfig> ParseConfig(const Json& config);

}  // namespace airlock::tunnels::https
