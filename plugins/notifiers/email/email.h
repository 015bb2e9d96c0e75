// The e-mail notifier: writes each notification as a plain-text e-mail to
// the addresses of its recipients (recipients.emails, and the configured
// addresses of recipients.groups and recipients.subjects) through an SMTP
// server, with STARTTLS required unless the server is on this host.
//
// Subject and body tell the same facts as the Slack message (who asks, for
// what, why, the approver groups, the window; or what happened to the
// requester's request) with the console link. The Message-ID is derived from
// the notification id, so a re-delivery is recognisably the same message.
// Nobody to write to is a permanent error naming the groups and subjects
// that have no address.
//
// Members read: id, event, occurred_at (the Date header), recipients.{emails,
// groups,subjects}, and those of common/notification_text.h.
#pragma once

#include <memory>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "email/config.h"

namespace airlock::notifiers::email {

class EmailNotifier : public sdk::Notifier {
 public:
  // Validates the configuration and, when a password is configured, checks
  // that it resolves; connects to nothing.
  static Result<std::unique_ptr<EmailNotifier>> Create(const Json& config, const sdk::Host& host);
  // Refuses what Create refuses, without resolving the password.
  static Status CheckConfig(const Json& config, const sdk::Host& host);

  Status Deliver(const sdk::Notification& notification) override;

 private:
  EmailNotifier(EmailConfig config, sdk::Host host)
      : config_(std::move(config)), host_(std::move(host)) {}

  const EmailConfig config_;
  const sdk::Host host_;
};

}  // namespace airlock::notifiers::email
