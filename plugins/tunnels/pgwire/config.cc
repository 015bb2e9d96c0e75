#include "config.h"

#include <string>
#include <string_view>

#include "airlock/cpp/config_read.hpp"
#include "airlock/cpp/tunnel_tls.hpp"

namespace airlock::tunnels::pgwire {
namespace {

namespace read = sdk::config_read;

constexpr std::string_view kWhere = "tunnel configuration";

}  // namespace

Result<PgwireConfig> ParseConfig(const Json& j) {
  if (!j.is_object()) return Status::InvalidArgument("tunnel configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(read::KnownKeys(
      j,
      {"listen_address", "port", "tls", "allow_plaintext", "public_host", "max_connections",
       "max_preauth_connections", "max_preauth_connections_per_address",
       "max_connections_per_endpoint", "max_message_bytes", "max_rows", "max_prepared_statements",
       "scram_iterations", "startup_timeout_ms", "idle_timeout_ms", "write_timeout_ms",
       "query_timeout_ms"},
      kWhere));

  PgwireConfig config;
  AIRLOCK_RETURN_IF_ERROR(sdk::tunnel::ReadListenerSettings(
      j, kWhere, sdk::tunnel::IsIpAddress,
      "plaintext needs \"allow_plaintext\": true and is for loopback development only", &config));
  // Each connection has its own thread: a smaller ceiling than the HTTP listeners.
  AIRLOCK_RETURN_IF_ERROR(
      sdk::ReadConnectionLimits(j, kWhere, /*per_endpoint=*/false, &config.connections));
  if (config.connections.max_connections > 10'000) {
    return json_read::Bad(kWhere, "max_connections", "must be between 2 and 10000");
  }
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "max_connections_per_endpoint", 1, 10'000,
                                        &config.max_connections_per_endpoint, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "max_message_bytes", 1024, 64 << 20, &config.max_message_bytes, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "max_rows", 1, 1'000'000'000, &config.max_rows, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "max_prepared_statements", 1, 100'000,
                                        &config.max_prepared_statements, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "scram_iterations", 4096, 1'000'000, &config.scram_iterations, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Millis(j, "startup_timeout_ms", 100, 600'000, &config.startup_timeout, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Millis(j, "idle_timeout_ms", 100, 86'400'000, &config.idle_timeout, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Millis(j, "write_timeout_ms", 100, 3'600'000, &config.write_timeout, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Millis(j, "query_timeout_ms", 1, 86'400'000, &config.query_timeout, kWhere));
  return config;
}

}  // namespace airlock::tunnels::pgwire
