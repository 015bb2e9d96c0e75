#include "webhook/config.h"

#include "common/config_util.h"

namespace airlock::notifiers::webhook {
namespace {

constexpr std::string_view kWhere = "webhook configuration";

}  // namespace

Result<WebhookConfig> ParseConfig(const Json& j, const sdk::Host& host) {
  if (!j.is_object()) return Status::InvalidArgument(std::string(kWhere) + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(
      CheckKeys(j, {"url", "secret", "ca_file", "timeout_ms", "allow_plaintext_http"}, kWhere));
  WebhookConfig c;
  c.timeout_ms = kDefaultTimeoutMs;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "url", &c.url, true, kWhere));
  AIRLOCK_RETURN_IF_ERROR(ReadBool(j, "allow_plaintext_http", &c.allow_plaintext_http, kWhere));
  AIRLOCK_ASSIGN_OR_RETURN(UrlParts url, ParseUrl(c.url, std::string(kWhere) + ".url"));
  if (url.scheme == "http") {
    if (!c.allow_plaintext_http) {
      return json_read::Bad(kWhere, "url",
                            "must be an https:// URL (plain http:// only with "
                            "allow_plaintext_http: the notification would travel unencrypted)");
    }
  } else if (url.scheme != "https") {
    return json_read::Bad(kWhere, "url", "must be an https:// URL");
  }
  if (url.has_credentials) {
    return json_read::Bad(kWhere, "url", "must not carry credentials");
  }
  c.host = url.host;
  AIRLOCK_RETURN_IF_ERROR(ReadSecretReference(j, "secret", true, &c.secret, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "ca_file", &c.ca_file, false, kWhere));
  if (!c.ca_file.empty()) {
    c.ca_file = host.ResolvePath(c.ca_file);
    AIRLOCK_RETURN_IF_ERROR(CheckCaFile(c.ca_file, kWhere));
  }
  AIRLOCK_RETURN_IF_ERROR(ReadBounded(j, "timeout_ms", 1, kMaxTimeoutMs, &c.timeout_ms, kWhere));
  return c;
}

}  // namespace airlock::notifiers::webhook
