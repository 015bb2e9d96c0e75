// Registers the signed-webhook notifier under the name "webhook".
#include "airlock/cpp/plugin.hpp"
#include "webhook/webhook.h"

namespace {

constexpr const char kConfigSchema[] = R"json({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["url", "secret"],
  "properties": {
    "url": {"type": "string", "description": "https:// URL the notification is POSTed to"},
    "secret": {"type": "string", "pattern": "^(env:|file:)",
               "description": "secret reference of the HMAC-SHA256 signing key"},
    "ca_file": {"type": "string", "description": "PEM CA bundle (relative to the configuration directory); default: system trust store"},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 120000, "default": 10000},
    "allow_plaintext_http": {"type": "boolean", "default": false}
  }
})json";

}  // namespace

AIRLOCK_NOTIFIER_PLUGIN(airlock::notifiers::webhook::WebhookNotifier, "webhook", "1.0.0",
                        "Signed JSON webhooks (HMAC-SHA256) over HTTPS", kConfigSchema)
