// Configuration of the PostgreSQL wire-protocol tunnel: parsed and validated
// once, at create(). Every error names the offending key.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "airlock/cpp/connection_budget.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/tunnel_kit.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::tunnels::pgwire {

using sdk::tunnel::TlsFiles;

struct PgwireConfig : sdk::tunnel::ListenerSettings {
  // listen_address, port, tls, allow_plaintext (development only: non-TLS
  // startups from loopback peers), public_host: the listener
  // (sdk::tunnel::ListenerSettings).
  // The connection budget (airlock/cpp/connection_budget.hpp): every open
  // connection (one thread each), and those still in the startup phase
  // (TLS, startup packet, SCRAM) overall and per client address. The share
  // of each endpoint is max_connections_per_endpoint (EndpointState).
  // A client's pool (20 connections is common) must fit one endpoint's share.
  sdk::ConnectionLimits connections{/*max_connections=*/256, /*max_preauth_connections=*/16,
                                    /*max_preauth_connections_per_address=*/8,
                                    /*max_connections_per_endpoint=*/0};
  uint32_t max_connections_per_endpoint = 64;
  size_t max_message_bytes = 1 << 20;      // one frontend message, header excluded
  uint64_t max_rows = 1'000'000;           // per statement result
  uint32_t max_prepared_statements = 256;  // per connection
  uint32_t scram_iterations = 4096;
  std::chrono::milliseconds startup_timeout{5000};  // TLS + startup + authentication
  std::chrono::milliseconds idle_timeout{600000};   // waiting for the next message
  std::chrono::milliseconds write_timeout{30000};   // a client that stops reading
  std::chrono::milliseconds query_timeout{300000};  // per statement

  bool tls_enabled() const { return tls.has_value(); }
};

// Parses and validates; unknown keys are refused (a typo must not silently
// fall back to a default such as plaintext).
Result<PgwireConfig> ParseConfig(const Json& config);

}  // namespace airlock::tunnels::pgwire
