// What a webhook receiver does with an Airlock-Signature header
// ("t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>"), written
// independently of the plugin so tests check one against the other.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace airlock::test {

// True when the header is well formed, |now_unix - t| <= window_seconds, and
// one of its v1 values equals the HMAC of "<t>.<body>" under `secret`
// (compared in constant time). Otherwise false, with the reason in *why
// when given.
bool VerifyAirlockSignature(std::string_view secret, std::string_view signature_header,
                            std::string_view body, int64_t now_unix, int64_t window_seconds,
                            std::string* why = nullptr);

}  // namespace airlock::test
