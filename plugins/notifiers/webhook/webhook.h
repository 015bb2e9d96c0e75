// The webhook notifier: POSTs each notification document, as compact JSON,
// to one configured URL with
//
//   Content-Type: application/json
//   Airlock-Idempotency-Key: <id>   (the same on every attempt: receivers drop repeats)
//   Airlock-Event: <event>
//   Airlock-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// The secret is resolved through the host at every delivery (a rotated
// secret is used from the next delivery on) and wiped right after signing.
// 2xx is delivered; see common/transfer_status.h for what is retried.
//
// Members read: id, event (the header values); the rest is carried as is.
#pragma once

#include <memory>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "webhook/config.h"

namespace airlock::notifiers::webhook {

class WebhookNotifier : public sdk::Notifier {
 public:
  // Validates the configuration and checks that the secret resolves (and is
  // not empty), so a broken reference is refused at start-up.
  static Result<std::unique_ptr<WebhookNotifier>> Create(const Json& config, const sdk::Host& host);
  // Refuses what Create refuses, without resolving the secret.
  static Status CheckConfig(const Json& config, const sdk::Host& host);

  Status Deliver(const sdk::Notification& notification) override;

 private:
  WebhookNotifier(WebhookConfig config, sdk::Host host)
      : config_(std::move(config)), host_(std::move(host)) {}

  const WebhookConfig config_;
  const sdk::Host host_;
};

}  // namespace airlock::notifiers::webhook
