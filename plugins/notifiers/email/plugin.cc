// Registers the SMTP e-mail notifier under the name "email".
#include "airlock/cpp/plugin.hpp"
#include "email/email.h"

namespace {

constexpr const char kConfigSchema[] = R"json({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["smtp_url", "from"],
  "properties": {
    "smtp_url": {"type": "string", "description": "smtp://host:port (STARTTLS) or smtps://host:port"},
    "starttls": {"enum": ["required", "none"], "default": "required",
                 "description": "\"none\" only for a server on a loopback address"},
    "ca_file": {"type": "string", "description": "PEM CA bundle (relative to the configuration directory); default: system trust store"},
    "username": {"type": "string"},
    "password": {"type": "string", "pattern": "^(env:|file:)", "description": "secret reference"},
    "from": {"type": "string", "description": "\"Airlock <airlock@example.com>\""},
    "addresses": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "groups": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "subjects": {"type": "object", "additionalProperties": {"type": "string"}}
      }
    },
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 120000, "default": 10000}
  }
})json";

}  // namespace

AIRLOCK_NOTIFIER_PLUGIN(airlock::notifiers::email::EmailNotifier, "email", "1.0.0",
                        "Plain-text e-mail through an SMTP server (STARTTLS required)",
                        kConfigSchema)
