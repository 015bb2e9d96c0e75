// Configuration of the webhook notifier: where to POST, the reference of the
// signing secret, whom to trust and how long to wait.
#pragma once

#include <cstdint>
#include <string>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::notifiers::webhook {

struct WebhookConfig {
  std::string url;
  std::string host;        // for messages: the URL itself may carry a token
  std::string secret;      // secret reference (env:NAME, file:/path), resolved per delivery
  std::string ca_file;     // absolute; empty = the system trust store
  int64_t timeout_ms = 0;  // the whole exchange, connect included
  bool allow_plaintext_http = false;
};

// Validates `j` in full (relative ca_file against the host's configuration
// directory, and loaded); InvalidArgument names the key. Resolves nothing.
Result<WebhookConfig> ParseConfig(const Json& j, const sdk::Host& host);

}  // namespace airlock::notifiers::webhook
