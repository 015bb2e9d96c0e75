// Configuration of the Slack notifier. The incoming-webhook URL is itself the
// credential (anyone holding it can post to the channel), so the
// configuration holds only a secret reference to it.
#pragma once

#include <cstdint>
#include <string>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::notifiers::slack {

struct SlackConfig {
  std::string webhook_url;  // secret reference (env:NAME, file:/path), resolved per delivery
  std::string ca_file;      // absolute; empty = the system trust store
  int64_t timeout_ms = 0;
  bool allow_plaintext_http = false;
};

// Validates `j` in full (relative ca_file against the host's configuration
// directory, and loaded); InvalidArgument names the key. Resolves nothing.
Result<SlackConfig> ParseConfig(const Json& j, const sdk::Host& host);

// Checks a resolved webhook URL: absolute, https:// (http:// only when
// allowed), no credentials. The message never quotes the URL.
Status CheckWebhookUrl(std::string_view url, bool allow_plaintext_http);

}  // namespace airlock::notifiers::slack
