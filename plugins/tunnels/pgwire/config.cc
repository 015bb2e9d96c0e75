#include "config.h"

#include <boost/asio/ip/address.hpp>

#include <set>
#include <string>
#include <string_view>

namespace airlock::tunnels::pgwire {
namespace {

constexpr std::string_view kWhere = "tunnel configuration";

Status Bad(std::string_view key, std::string_view what) {
  return Status::InvalidArgument(std::string(kWhere) + "." + std::string(key) + " " +
                                 std::string(what));
}

// Reads an optional integer in [min, max] into *out.
template <typename T>
Status Bounded(const Json& j, std::string_view key, int64_t min, int64_t max, T* out) {
  int64_t value = static_cast<int64_t>(*out);
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(j, key, &value, false, kWhere));
  if (value < min || value > max) {
    return Bad(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  *out = static_cast<T>(value);
  return Status::Ok();
}

Status Millis(const Json& j, std::string_view key, int64_t min, int64_t max,
              std::chrono::milliseconds* out) {
  int64_t ms = out->count();
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, key, min, max, &ms));
  *out = std::chrono::milliseconds(ms);
  return Status::Ok();
}

Status Bool(const Json& j, std::string_view key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return Bad(key, "must be true or false");
  *out = it->get<bool>();
  return Status::Ok();
}

// A host name or IP literal fit for the authority part of a URL.
bool IsValidPublicHost(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Status CheckKnownKeys(const Json& j, const std::set<std::string>& known, std::string_view where) {
  for (const auto& item : j.items()) {
    if (known.count(item.key()) == 0) {
      return Status::InvalidArgument(std::string(where) + ": unknown key '" + item.key() + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<PgwireConfig> ParseConfig(const Json& j) {
  if (!j.is_object()) return Status::InvalidArgument("tunnel configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(CheckKnownKeys(
      j,
      {"listen_address", "port", "tls", "allow_plaintext", "public_host", "max_connections",
       "max_preauth_connections", "max_preauth_connections_per_address",
       "max_connections_per_endpoint", "max_message_bytes", "max_rows", "max_prepared_statements",
       "scram_iterations", "startup_timeout_ms", "idle_timeout_ms", "write_timeout_ms",
       "query_timeout_ms"},
      kWhere));

  PgwireConfig config;
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(j, "listen_address", &config.listen_address, false, kWhere));
  boost::system::error_code ec;
  boost::asio::ip::make_address(config.listen_address, ec);
  if (ec) return Bad("listen_address", "must be an IPv4 or IPv6 address");
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "port", 0, 65535, &config.port));

  AIRLOCK_RETURN_IF_ERROR(Bool(j, "allow_plaintext", &config.allow_plaintext));
  if (auto it = j.find("tls"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("tls", "must be an object");
    AIRLOCK_RETURN_IF_ERROR(
        CheckKnownKeys(*it, {"certificate_file", "private_key_file"}, "tunnel configuration.tls"));
    TlsFiles files;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(*it, "certificate_file", &files.certificate_file,
                                              true, "tunnel configuration.tls"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(*it, "private_key_file", &files.private_key_file,
                                              true, "tunnel configuration.tls"));
    if (files.certificate_file.empty()) return Bad("tls.certificate_file", "must not be empty");
    if (files.private_key_file.empty()) return Bad("tls.private_key_file", "must not be empty");
    config.tls = std::move(files);
  } else if (!config.allow_plaintext) {
    return Bad("tls",
               "is required (certificate_file, private_key_file); plaintext needs "
               "\"allow_plaintext\": true and is for loopback development only");
  }

  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "public_host", &config.public_host, false, kWhere));
  if (!IsValidPublicHost(config.public_host)) {
    return Bad("public_host", "must be a host name or IP address (letters, digits, . - : _)");
  }
  // Each connection has its own thread: a smaller ceiling than the HTTP listeners.
  AIRLOCK_RETURN_IF_ERROR(
      sdk::ReadConnectionLimits(j, kWhere, /*per_endpoint=*/false, &config.connections));
  if (config.connections.max_connections > 10'000) {
    return Bad("max_connections", "must be between 2 and 10000");
  }
  AIRLOCK_RETURN_IF_ERROR(
      Bounded(j, "max_connections_per_endpoint", 1, 10'000, &config.max_connections_per_endpoint));
  AIRLOCK_RETURN_IF_ERROR(
      Bounded(j, "max_message_bytes", 1024, 64 << 20, &config.max_message_bytes));
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "max_rows", 1, 1'000'000'000, &config.max_rows));
  AIRLOCK_RETURN_IF_ERROR(
      Bounded(j, "max_prepared_statements", 1, 100'000, &config.max_prepared_statements));
  AIRLOCK_RETURN_IF_ERROR(
      Bounded(j, "scram_iterations", 4096, 1'000'000, &config.scram_iterations));
  AIRLOCK_RETURN_IF_ERROR(Millis(j, "startup_timeout_ms", 100, 600'000, &config.startup_timeout));
  AIRLOCK_RETURN_IF_ERROR(Millis(j, "idle_timeout_ms", 100, 86'400'000, &config.idle_timeout));
  AIRLOCK_RETURN_IF_ERROR(Millis(j, "write_timeout_ms", 100, 3'600'000, &config.write_timeout));
  AIRLOCK_RETURN_IF_ERROR(Millis(j, "query_timeout_ms", 1, 86'400'000, &config.query_timeout));
  return config;
}

}  // namespace airlock::tunnels::pgwire
