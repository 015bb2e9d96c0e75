#include "webhook/webhook.h"

#include <ctime>

#include "common/http_post.h"
#include "common/text_util.h"
#include "webhook/signature.h"

namespace airlock::notifiers::webhook {
namespace {

// Header values come from the document: one line, no control characters.
std::string HeaderValue(std::string_view value) {
  return CleanText(value, 512);
}

int64_t NowSeconds(const sdk::Host& host) {
  const int64_t micros = host.NowMicros();
  return micros > 0 ? micros / 1000000 : static_cast<int64_t>(std::time(nullptr));
}

}  // namespace

Status WebhookNotifier::CheckConfig(const Json& config, const sdk::Host& host) {
  return ParseConfig(config, host).status();
}

Result<std::unique_ptr<WebhookNotifier>> WebhookNotifier::Create(const Json& config,
                                                                 const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(WebhookConfig parsed, ParseConfig(config, host));
  {
    auto secret = host.ResolveSecret(parsed.secret);
    if (!secret.ok()) return secret.status().WithContext("webhook configuration.secret");
    if (secret->view().empty()) {
      return Status::InvalidArgument("webhook configuration.secret resolves to an empty value");
    }
  }  // released (and wiped by the host) here; resolved again at each delivery
  host.Info("webhook notifier: delivers to " + parsed.host);
  return std::unique_ptr<WebhookNotifier>(new WebhookNotifier(std::move(parsed), host));
}

Status WebhookNotifier::Deliver(const sdk::Notification& notification) {
  const std::string body =
      notification.document.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::string signature;
  {
    auto secret = host_.ResolveSecret(config_.secret);
    if (!secret.ok()) {
      // Perhaps mid-rotation: try again later rather than send unsigned.
      return Status::Unavailable("webhook secret " + config_.secret +
                                 " could not be resolved: " + secret.status().message());
    }
    if (secret->view().empty()) {
      return Status::Unavailable("webhook secret " + config_.secret +
                                 " resolves to an empty value");
    }
    auto value = SignatureHeaderValue(secret->view(), NowSeconds(host_), body);
    if (!value.ok()) return value.status();
    signature = std::move(value).value();
  }

  HttpPost post;
  post.url = config_.url;
  post.protocols = config_.allow_plaintext_http ? "http,https" : "https";
  post.headers = {"Airlock-Idempotency-Key: " + HeaderValue(notification.id),
                  "Airlock-Event: " + HeaderValue(notification.event),
                  "Airlock-Signature: " + signature};
  post.body = body;
  post.limits = {config_.ca_file, config_.timeout_ms};
  post.what = "webhook at " + config_.host;
  const Status status = PostAndCheck(post);
  if (!status.ok())
    host_.Warn("notification " + HeaderValue(notification.id) + ": " + status.message());
  return status;
}

}  // namespace airlock::notifiers::webhook
