// What a notification says, worded once for every notifier that writes for
// people (Slack, e-mail): a headline sentence, a short title, labelled facts
// and a link to the console. Everything is plain text taken from the
// notification document, cleaned to single lines and bounded; each notifier
// escapes it for its own format.
//
// Members read (any may be absent; unknown members are ignored):
//   event, audience, request.id, request.state, request.requester.{subject,
//   kind,email}, request.datasets (strings, or objects with "name"),
//   request.purpose, request.reason, request.window_seconds,
//   request.not_after, request.approval.{groups,count}, links.console.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/plugin.hpp"

namespace airlock::notifiers {

struct Fact {
  std::string label;  // "Requester"
  std::string value;  // "alice (human, alice@example.com)"
};

struct NotificationText {
  std::string title;     // short, no final period: "Approval needed: alice asks for orders"
  std::string headline;  // one sentence: "alice asks for 1 hour of access to orders."
  std::vector<Fact> facts;
  std::string link_label;  // "Review in the console", or empty without a link
  std::string link_url;    // links.console when it is an http(s) URL, else empty
};

// `now_unix` is used for "ends in N minutes".
NotificationText Describe(const sdk::Notification& notification, int64_t now_unix);

}  // namespace airlock::notifiers
