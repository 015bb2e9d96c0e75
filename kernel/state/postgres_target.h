// Where the PostgreSQL state store connects, built from the connection string
// (a secret: it usually carries the password) and the configured TLS
// settings. Internal to kernel/state.
//
// The connection string is parsed once with libpq (keyword/value or URI
// form) and rebuilt as keyword/value pairs with the TLS settings applied, so
// libpq never sees, and never quotes back in an error, the text the operator
// wrote. Every message that leaves this module passes Redact(), which blanks
// the connection string and the password wherever a library echoes them.
// Errors and logs name the server only by Describe() (user@host:port/db).
//
// Thread-safety: const after Parse; Connect may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/connection>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"
#include "kernel/state/postgres_state_store.h"

namespace airlock::pg {

struct TargetOptions {
  PostgresTlsSettings tls;
  // Used when the connection string sets no connect_timeout.
  int connect_timeout_seconds = 5;
};

class Target {
 public:
  // InvalidArgument when `dsn` is not a connection string libpq accepts
  // (the message never quotes it) or the TLS settings are incomplete.
  static Result<Target> Parse(const Secret& dsn, const TargetOptions& options);

  // A new connection. Unavailable with the (redacted) reason on failure.
  Result<std::unique_ptr<pqxx::connection>> Connect() const;

  // "user@host:port/dbname" as far as the connection string says.
  const std::string& Describe() const { return description_; }

  // `message` with the connection string and the password blanked.
  std::string Redact(std::string message) const;

  // Unavailable("<what> on <Describe()>: <redacted what()>").
  Status Failure(std::string_view what, const std::exception& error) const;

 private:
  Secret conninfo_;                 // rebuilt keyword/value string
  std::vector<Secret> redactions_;  // texts never to appear in a message
  std::string description_;
};

}  // namespace airlock::pg
