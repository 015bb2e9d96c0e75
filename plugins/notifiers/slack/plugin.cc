// Registers the Slack incoming-webhook notifier under the name "slack".
#include "airlock/cpp/plugin.hpp"
#include "slack/slack.h"

namespace {

constexpr const char kConfigSchema[] = R"json({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["webhook_url"],
  "properties": {
    "webhook_url": {"type": "string", "pattern": "^(env:|file:)",
                    "description": "secret reference of the Slack incoming-webhook URL"},
    "ca_file": {"type": "string", "description": "PEM CA bundle (relative to the configuration directory); default: system trust store"},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 120000, "default": 10000},
    "allow_plaintext_http": {"type": "boolean", "default": false}
  }
})json";

}  // namespace

AIRLOCK_NOTIFIER_PLUGIN(airlock::notifiers::slack::SlackNotifier, "slack", "1.0.0",
                        "Slack incoming-webhook messages for approvers and requesters",
                        kConfigSchema)
