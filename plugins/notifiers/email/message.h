// The RFC 5322 message for a notification: headers (From, To, Subject,
// Date, Message-ID, MIME-Version, Content-Type text/plain; charset=UTF-8,
// Content-Transfer-Encoding: quoted-printable, Auto-Submitted) and a plain
// text body telling the same facts as the Slack message, with the console
// link. Lines end in CRLF.
//
// Nothing from the document reaches a header unescaped: text is cleaned to
// one line (CR and LF become spaces) and non-ASCII text is RFC 2047
// encoded, addresses are validated, the Message-ID is a digest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/notification_text.h"
#include "email/address.h"

namespace airlock::notifiers::email {

struct MessageParts {
  Mailbox from;
  std::vector<std::string> to;  // valid addresses
  std::string notification_id;  // the idempotency key
  std::string event;
  int64_t date_unix = 0;
};

// "<airlock.<32 hex digits of SHA-256(id)>@<domain>>": the same for every
// attempt at the same notification, so mail clients and servers see a
// re-delivery as the same message.
std::string MessageIdFor(std::string_view notification_id, std::string_view domain);

// `text` as a header value: as is when it is printable ASCII, else RFC 2047
// encoded words (UTF-8, base64), folded.
std::string EncodeHeaderText(std::string_view text);

// Quoted-printable (RFC 2045), CRLF line ends, lines at most 76 characters.
std::string QuotedPrintable(std::string_view text);

std::string ComposeMessage(const MessageParts& parts, const NotificationText& text);

}  // namespace airlock::notifiers::email
