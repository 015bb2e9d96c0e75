// The Airlock-Signature header of a webhook delivery:
//
//   Airlock-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<body>")>
//
// The timestamp is inside the MAC, so a receiver that checks it against its
// own clock (and refuses |now - t| > 300 s) cannot be fed an old delivery
// again by someone who recorded it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"

namespace airlock::notifiers::webhook {

// "t=...,v1=..." for `body` signed with `secret` at `unix_seconds`.
Result<std::string> SignatureHeaderValue(std::string_view secret, int64_t unix_seconds,
                                         std::string_view body);

}  // namespace airlock::notifiers::webhook
