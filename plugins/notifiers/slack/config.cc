#include "slack/config.h"

#include "common/config_util.h"

namespace airlock::notifiers::slack {
namespace {

constexpr std::string_view kWhere = "slack configuration";

}  // namespace

Result<SlackConfig> ParseConfig(const Json& j, const sdk::Host& host) {
  if (!j.is_object()) return Status::InvalidArgument(std::string(kWhere) + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(
      CheckKeys(j, {"webhook_url", "ca_file", "timeout_ms", "allow_plaintext_http"}, kWhere));
  SlackConfig c;
  c.timeout_ms = kDefaultTimeoutMs;
  AIRLOCK_RETURN_IF_ERROR(ReadSecretReference(j, "webhook_url", true, &c.webhook_url, kWhere));
  AIRLOCK_RETURN_IF_ERROR(ReadBool(j, "allow_plaintext_http", &c.allow_plaintext_http, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "ca_file", &c.ca_file, false, kWhere));
  if (!c.ca_file.empty()) {
    c.ca_file = host.ResolvePath(c.ca_file);
    AIRLOCK_RETURN_IF_ERROR(CheckCaFile(c.ca_file, kWhere));
  }
  AIRLOCK_RETURN_IF_ERROR(ReadBounded(j, "timeout_ms", 1, kMaxTimeoutMs, &c.timeout_ms, kWhere));
  return c;
}

Status CheckWebhookUrl(std::string_view url, bool allow_plaintext_http) {
  const std::string what = std::string(kWhere) + ".webhook_url resolves to a value that";
  auto parts = ParseUrl(url, what);
  if (!parts.ok()) return parts.status();
  if (parts->scheme == "http" && !allow_plaintext_http) {
    return Status::InvalidArgument(what +
                                   " is a plain http:// URL (https:// required unless "
                                   "allow_plaintext_http)");
  }
  if (parts->scheme != "https" && parts->scheme != "http") {
    return Status::InvalidArgument(what + " is not an https:// URL");
  }
  if (parts->has_credentials) return Status::InvalidArgument(what + " carries credentials");
  return Status::Ok();
}

}  // namespace airlock::notifiers::slack
