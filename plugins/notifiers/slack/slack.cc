#include "slack/slack.h"

#include <ctime>

#include "common/http_post.h"
#include "common/notification_text.h"
#include "common/text_util.h"
#include "common/wiped_string.h"
#include "slack/slack_message.h"

namespace airlock::notifiers::slack {
namespace {

int64_t NowSeconds(const sdk::Host& host) {
  const int64_t micros = host.NowMicros();
  return micros > 0 ? micros / 1000000 : static_cast<int64_t>(std::time(nullptr));
}

}  // namespace

Status SlackNotifier::CheckConfig(const Json& config, const sdk::Host& host) {
  return ParseConfig(config, host).status();
}

Result<std::unique_ptr<SlackNotifier>> SlackNotifier::Create(const Json& config,
                                                             const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(SlackConfig parsed, ParseConfig(config, host));
  {
    auto url = host.ResolveSecret(parsed.webhook_url);
    if (!url.ok()) return url.status().WithContext("slack configuration.webhook_url");
    AIRLOCK_RETURN_IF_ERROR(CheckWebhookUrl(url->view(), parsed.allow_plaintext_http));
  }
  host.Info("slack notifier: webhook URL from " + parsed.webhook_url);
  return std::unique_ptr<SlackNotifier>(new SlackNotifier(std::move(parsed), host));
}

Status SlackNotifier::Deliver(const sdk::Notification& notification) {
  const NotificationText text = Describe(notification, NowSeconds(host_));
  const std::string body = SlackMessage(text).dump(-1, ' ', false, Json::error_handler_t::replace);

  WipedString url;
  {
    auto resolved = host_.ResolveSecret(config_.webhook_url);
    if (!resolved.ok()) {
      return Status::Unavailable("slack webhook URL " + config_.webhook_url +
                                 " could not be resolved: " + resolved.status().message());
    }
    url.str().assign(resolved->view());
  }
  AIRLOCK_RETURN_IF_ERROR(CheckWebhookUrl(url.view(), config_.allow_plaintext_http));

  HttpPost post;
  post.url = url.view();
  post.protocols = config_.allow_plaintext_http ? "http,https" : "https";
  post.body = body;
  post.limits = {config_.ca_file, config_.timeout_ms};
  post.what = "Slack webhook";
  const Status status = PostAndCheck(post);
  if (!status.ok()) {
    host_.Warn("notification " + CleanText(notification.id, 200) + ": " + status.message());
  }
  return status;
}

}  // namespace airlock::notifiers::slack
