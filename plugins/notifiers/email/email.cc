#include "email/email.h"

#include <ctime>

#include "common/notification_text.h"
#include "common/text_util.h"
#include "common/wiped_string.h"
#include "email/message.h"
#include "email/recipients.h"
#include "email/smtp_send.h"

namespace airlock::notifiers::email {
namespace {

int64_t NowSeconds(const sdk::Host& host) {
  const int64_t micros = host.NowMicros();
  return micros > 0 ? micros / 1000000 : static_cast<int64_t>(std::time(nullptr));
}

}  // namespace

Status EmailNotifier::CheckConfig(const Json& config, const sdk::Host& host) {
  return ParseConfig(config, host).status();
}

Result<std::unique_ptr<EmailNotifier>> EmailNotifier::Create(const Json& config,
                                                             const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(EmailConfig parsed, ParseConfig(config, host));
  if (!parsed.password.empty()) {
    auto password = host.ResolveSecret(parsed.password);
    if (!password.ok()) return password.status().WithContext("email configuration.password");
  }
  host.Info("email notifier: sends through " + parsed.host +
            (parsed.implicit_tls        ? " (TLS)"
             : parsed.starttls_required ? " (STARTTLS required)"
                                        : " (no TLS: loopback server)"));
  return std::unique_ptr<EmailNotifier>(new EmailNotifier(std::move(parsed), host));
}

Status EmailNotifier::Deliver(const sdk::Notification& notification) {
  const Json& doc = notification.document;
  auto recipients = ResolveRecipients(doc, config_);
  if (!recipients.ok()) {
    host_.Warn("notification " + CleanText(notification.id, 200) + ": " +
               recipients.status().message());
    return recipients.status();
  }
  if (!recipients->unresolved.empty()) {
    std::string missing;
    for (const std::string& item : recipients->unresolved) {
      missing += (missing.empty() ? "" : "; ") + item;
    }
    host_.Warn("notification " + CleanText(notification.id, 200) +
               " goes to fewer people: " + missing);
  }

  const int64_t now = NowSeconds(host_);
  MessageParts parts;
  parts.from = config_.from;
  parts.to = recipients->addresses;
  parts.notification_id = notification.id;
  parts.event = notification.event;
  // The time of the event, not of this attempt: every attempt is the same message.
  parts.date_unix = now;
  if (auto at = doc.find("occurred_at"); at != doc.end() && at->is_string()) {
    if (auto t = ParseTimestamp(at->get_ref<const std::string&>())) parts.date_unix = *t;
  }
  const std::string message = ComposeMessage(parts, Describe(notification, now));

  WipedString password;
  if (!config_.password.empty()) {
    auto resolved = host_.ResolveSecret(config_.password);
    if (!resolved.ok()) {
      return Status::Unavailable("SMTP password " + config_.password +
                                 " could not be resolved: " + resolved.status().message());
    }
    password.str().assign(resolved->view());
  }
  const Status status =
      SendMail(config_, password.view(), {config_.from.address, recipients->addresses}, message);
  if (!status.ok()) {
    host_.Warn("notification " + CleanText(notification.id, 200) + ": " + status.message());
  }
  return status;
}

}  // namespace airlock::notifiers::email
