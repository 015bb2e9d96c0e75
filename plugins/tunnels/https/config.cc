#include "config.h"

#include <string>
#include <string_view>

#include "airlock/cpp/config_read.hpp"
#include "airlock/cpp/tunnel_tls.hpp"

namespace airlock::tunnels::https {
namespace {

namespace read = sdk::config_read;

constexpr std::string_view kWhere = "tunnel configuration";

}  // namespace

Result<HttpsTunnelConfig> ParseConfig(const Json& j) {
  if (!j.is_object()) return Status::InvalidArgument("tunnel configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(
      read::KnownKeys(j,
                      {"listen_address", "port", "tls", "allow_plaintext", "public_host",
                       "max_rows", "max_body_bytes", "query_timeout_ms", "rate_limit_per_minute",
                       "max_concurrent_queries", "io_threads", "query_threads", "max_connections",
                       "max_preauth_connections", "max_preauth_connections_per_address",
                       "max_connections_per_endpoint", "preauth_timeout_ms", "idle_timeout_ms"},
                      kWhere));

  HttpsTunnelConfig config;
  AIRLOCK_RETURN_IF_ERROR(sdk::tunnel::ReadListenerSettings(
      j, kWhere, sdk::tunnel::IsIpAddress,
      "plain HTTP needs \"allow_plaintext\": true and is for development only", &config));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "max_rows", 1, 100'000'000, &config.max_rows, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "max_body_bytes", 16, 16 << 20, &config.max_body_bytes, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Millis(j, "query_timeout_ms", 1, 3'600'000, &config.query_timeout, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "rate_limit_per_minute", 0, 1'000'000,
                                        &config.rate_limit_per_minute, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "max_concurrent_queries", 1, 1024, &config.max_concurrent_queries, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "io_threads", 1, 64, &config.io_threads, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "query_threads", 1, 256, &config.query_threads, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      sdk::ReadConnectionLimits(j, kWhere, /*per_endpoint=*/true, &config.connections));
  AIRLOCK_RETURN_IF_ERROR(
      read::Millis(j, "preauth_timeout_ms", 100, 600'000, &config.preauth_timeout, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Millis(j, "idle_timeout_ms", 100, 3'600'000, &config.idle_timeout, kWhere));
  return config;
}

}  // namespace airlock::tunnels::https
