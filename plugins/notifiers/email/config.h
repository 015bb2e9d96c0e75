// Configuration of the e-mail notifier: the SMTP server and how to talk to
// it (STARTTLS required unless the server is on this host), the sender, and
// the directory that turns the kernel's groups and subjects into addresses.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "email/address.h"

namespace airlock::notifiers::email {

struct EmailConfig {
  std::string smtp_url;  // smtp://host:port or smtps://host:port
  std::string host;
  bool implicit_tls = false;      // smtps://
  bool starttls_required = true;  // smtp:// only; "none" only towards a loopback host
  std::string ca_file;            // absolute; empty = the system trust store
  std::string username;
  std::string password;  // secret reference, or empty
  Mailbox from;
  std::map<std::string, std::vector<std::string>> group_addresses;
  std::map<std::string, std::string> subject_addresses;
  int64_t timeout_ms = 0;
};

// Validates `j` in full (relative ca_file against the host's configuration
// directory, and loaded); InvalidArgument names the key. Resolves nothing.
Result<EmailConfig> ParseConfig(const Json& j, const sdk::Host& host);

}  // namespace airlock::notifiers::email
