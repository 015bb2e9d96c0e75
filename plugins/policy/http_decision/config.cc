#include "config.h"

#include <algorithm>
#include <set>
#include <string_view>

#include <boost/url/parse.hpp>

#include "airlock/cpp/config_read.hpp"

namespace airlock::policy::http_decision {
namespace {

namespace read = sdk::config_read;

constexpr std::string_view kWhere = "http-decision configuration";

Status Bad(std::string_view key, std::string_view what) {
  return Status::InvalidArgument(std::string(kWhere) + "." + std::string(key) + " " +
                                 std::string(what));
}

Status CheckKeys(const Json& j, const std::set<std::string>& known, std::string_view where) {
  return sdk::config_read::KnownKeys(j, known, where);
}

// "airlock/decision": slash-separated segments of [A-Za-z0-9_.-], no "..".
bool ValidDecisionPath(std::string_view path) {
  if (path.empty() || path.size() > 512 || path.front() == '/' || path.back() == '/') return false;
  if (path.find("//") != std::string_view::npos || path.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(path.begin(), path.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '/';
  });
}

}  // namespace

Result<DecisionServiceConfig> ParseConfig(const Json& j) {
  if (!j.is_object()) return Status::InvalidArgument(std::string(kWhere) + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(
      CheckKeys(j,
                {"url", "decision_path", "connect_timeout_ms", "timeout_ms", "max_response_bytes",
                 "max_connections", "tls", "bearer_token_secret"},
                kWhere));
  DecisionServiceConfig c;
  std::string url;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "url", &url, true, kWhere));
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return Bad("url", "must be an absolute http:// or https:// URL");
  const auto& u = *parsed;
  if (u.scheme() == "https") {
    c.tls = true;
  } else if (u.scheme() != "http") {
    return Bad("url", "must use http or https");
  }
  if (u.has_userinfo()) return Bad("url", "must not carry credentials (use bearer_token_secret)");
  if (u.has_query() || u.has_fragment()) return Bad("url", "must not have a query or fragment");
  c.host = std::string(u.encoded_host_address());
  if (c.host.size() >= 2 && c.host.front() == '[' && c.host.back() == ']') {
    c.host = c.host.substr(1, c.host.size() - 2);
  }
  if (c.host.empty()) return Bad("url", "must name a host");
  c.port = u.has_port() ? std::string(u.port()) : std::string(c.tls ? "443" : "80");
  if (u.has_port() && (c.port.empty() || u.port_number() == 0)) {
    return Bad("url", "has an invalid port");
  }
  c.base_path = std::string(u.encoded_path());
  while (!c.base_path.empty() && c.base_path.back() == '/') c.base_path.pop_back();

  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "decision_path", &c.decision_path, true, kWhere));
  if (!ValidDecisionPath(c.decision_path)) {
    return Bad("decision_path", "must be slash-separated names like \"airlock/decision\"");
  }
  c.target = c.base_path + "/v1/data/" + c.decision_path;

  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "connect_timeout_ms", 1, 60000, &c.connect_timeout_ms, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "timeout_ms", 1, 120000, &c.timeout_ms, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "max_response_bytes", 256, 64 * 1024 * 1024, &c.max_response_bytes, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "max_connections", 1, 256, &c.max_connections, kWhere));

  if (auto tls = j.find("tls"); tls != j.end() && !tls->is_null()) {
    const std::string where = std::string(kWhere) + ".tls";
    if (!tls->is_object()) return Bad("tls", "must be an object");
    if (!c.tls) return Bad("tls", "is only valid with an https:// url");
    AIRLOCK_RETURN_IF_ERROR(CheckKeys(*tls, {"ca_file", "server_name"}, where));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(*tls, "ca_file", &c.ca_file, false, where));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(*tls, "server_name", &c.server_name, false, where));
  }
  // Never echoed when refused: it may be a pasted token.
  AIRLOCK_RETURN_IF_ERROR(
      read::SecretReference(j, "bearer_token_secret", &c.bearer_token_secret, false, kWhere));
  return c;
}

}  // namespace airlock::policy::http_decision
