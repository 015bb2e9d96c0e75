#include "config.h"

#include <boost/asio/ip/address.hpp>

#include <set>
#include <string>
#include <string_view>

namespace airlock::tunnels::https {
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

Result<HttpsTunnelConfig> ParseConfig(const Json& j) {
  if (!j.is_object()) return Status::InvalidArgument("tunnel configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(
      CheckKnownKeys(j,
                     {"listen_address", "port", "tls", "allow_plaintext", "public_host", "max_rows",
                      "max_body_bytes", "query_timeout_ms", "rate_limit_per_minute",
                      "max_concurrent_queries", "io_threads", "query_threads", "max_connections",
                      "max_preauth_connections", "max_preauth_connections_per_address",
                      "max_connections_per_endpoint", "preauth_timeout_ms", "idle_timeout_ms"},
                     kWhere));

  HttpsTunnelConfig config;
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
               "is required (certificate_file, private_key_file); plain HTTP needs "
               "\"allow_plaintext\": true and is for development only");
  }

  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "public_host", &config.public_host, false, kWhere));
  if (!IsValidPublicHost(config.public_host)) {
    return Bad("public_host", "must be a host name or IP address (letters, digits, . - : _)");
  }

  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "max_rows", 1, 100'000'000, &config.max_rows));
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "max_body_bytes", 16, 16 << 20, &config.max_body_bytes));
  int64_t timeout_ms = config.query_timeout.count();
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "query_timeout_ms", 1, 3'600'000, &timeout_ms));
  config.query_timeout = std::chrono::milliseconds(timeout_ms);
  AIRLOCK_RETURN_IF_ERROR(
      Bounded(j, "rate_limit_per_minute", 0, 1'000'000, &config.rate_limit_per_minute));
  AIRLOCK_RETURN_IF_ERROR(
      Bounded(j, "max_concurrent_queries", 1, 1024, &config.max_concurrent_queries));
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "io_threads", 1, 64, &config.io_threads));
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "query_threads", 1, 256, &config.query_threads));
  AIRLOCK_RETURN_IF_ERROR(
      sdk::ReadConnectionLimits(j, kWhere, /*per_endpoint=*/true, &config.connections));
  int64_t preauth_ms = config.preauth_timeout.count();
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "preauth_timeout_ms", 100, 600'000, &preauth_ms));
  config.preauth_timeout = std::chrono::milliseconds(preauth_ms);
  int64_t idle_ms = config.idle_timeout.count();
  AIRLOCK_RETURN_IF_ERROR(Bounded(j, "idle_timeout_ms", 100, 3'600'000, &idle_ms));
  config.idle_timeout = std::chrono::milliseconds(idle_ms);
  return config;
}

}  // namespace airlock::tunnels::https
