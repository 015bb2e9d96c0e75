// The Slack notifier: posts each notification to a Slack incoming webhook
// (or anything that takes the same payload) as a short, readable message:
// for approvers who asks, for what, why, the policy's reason, which groups
// approve, the window and a "Review in the console" button; for the
// requester one clear sentence per event (approved, denied with the reason,
// ready, ending in N minutes, expired, revoked, closed, failed).
//
// The webhook URL is a secret: resolved through the host at every delivery,
// wiped after, and never named in a message or a log line. Slack answers 200
// "ok"; 429 (rate limited, Retry-After reported) is retried, other 4xx given up.
//
// Members read: see common/notification_text.h.
#pragma once

#include <memory>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "slack/config.h"

namespace airlock::notifiers::slack {

class SlackNotifier : public sdk::Notifier {
 public:
  // Validates the configuration and checks that the URL resolves to an
  // acceptable URL, so a broken reference is refused at start-up.
  static Result<std::unique_ptr<SlackNotifier>> Create(const Json& config, const sdk::Host& host);
  // Refuses what Create refuses, without resolving the URL.
  static Status CheckConfig(const Json& config, const sdk::Host& host);

  Status Deliver(const sdk::Notification& notification) override;

 private:
  SlackNotifier(SlackConfig config, sdk::Host host)
      : config_(std::move(config)), host_(std::move(host)) {}

  const SlackConfig config_;
  const sdk::Host host_;
};

}  // namespace airlock::notifiers::slack
