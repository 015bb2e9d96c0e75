// Who receives a notification by e-mail: the document's recipients.emails,
// plus the configured addresses of its recipients.groups and
// recipients.subjects, each address once (compared case-insensitively).
#pragma once

#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "email/config.h"

namespace airlock::notifiers::email {

struct Recipients {
  std::vector<std::string> addresses;
  // What had no address: "group data-owners has no address", "'x' is not a valid address".
  std::vector<std::string> unresolved;
};

// InvalidArgument (given up: retrying cannot help) naming what had no
// address when nobody is left to write to.
Result<Recipients> ResolveRecipients(const Json& document, const EmailConfig& config);

}  // namespace airlock::notifiers::email
