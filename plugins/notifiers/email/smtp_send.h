// Hands one message to an SMTP server through libcurl: STARTTLS (or
// implicit TLS) with certificate and host name verification unless the
// configuration allows plaintext towards a loopback server, optional
// authentication, envelope sender and recipients, bounded in time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "email/config.h"

namespace airlock::notifiers::email {

struct Envelope {
  std::string from;             // address
  std::vector<std::string> to;  // addresses
};

// Ok once the server accepted the message (250 after DATA). Transient
// failures (connection trouble, timeouts, SMTP 4xx) are Unavailable or
// DeadlineExceeded; refusals (SMTP 5xx, no STARTTLS, untrusted certificate,
// refused credentials) are permanent. `password` may be empty.
Status SendMail(const EmailConfig& config, std::string_view password, const Envelope& envelope,
                std::string_view message);

}  // namespace airlock::notifiers::email
