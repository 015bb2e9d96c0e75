// E-mail addresses as this notifier accepts them: plain ASCII
// local@domain (RFC 5321 dot-atom local part, a host name as the domain),
// nothing that could end a header or an SMTP command.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace airlock::notifiers::email {

bool IsValidAddress(std::string_view address);

// The domain of a valid address.
std::string_view DomainOf(std::string_view address);

struct Mailbox {
  std::string display_name;  // may be empty
  std::string address;
};

// "Airlock <airlock@example.com>" or "airlock@example.com".
std::optional<Mailbox> ParseMailbox(std::string_view text);

// The mailbox as an RFC 5322 header value: the display name as an atom
// phrase, a quoted string, or (non-ASCII) an RFC 2047 encoded word.
std::string FormatMailbox(const Mailbox& mailbox);

}  // namespace airlock::notifiers::email
