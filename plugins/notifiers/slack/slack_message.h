// The Slack incoming-webhook payload for a notification:
//
//   {"text": <plain fallback for notifications and old clients>,
//    "blocks": [header, section (the sentence), section (the facts),
//               actions (a "Review in the console" button, when there is a link)]}
//
// Every piece of text comes from the request (names, purpose, reasons), so
// all of it is escaped for mrkdwn (&, <, >): a purpose of "<!channel>" is
// shown, not acted on.
#pragma once

#include <string>
#include <string_view>

#include "airlock/cpp/values.hpp"
#include "common/notification_text.h"

namespace airlock::notifiers::slack {

// &amp; &lt; &gt; as Slack asks for in mrkdwn text.
std::string EscapeMrkdwn(std::string_view text);

Json SlackMessage(const NotificationText& text);

}  // namespace airlock::notifiers::slack
