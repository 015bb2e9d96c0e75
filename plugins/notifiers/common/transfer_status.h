// How a failed transfer becomes a status the kernel acts on (see
// airlock_type_notifier_vtable): Unavailable, DeadlineExceeded and
// ResourceExhausted are tried again later; everything else is given up.
//
//   refused connection, reset, DNS failure, TLS handshake broken off,
//   HTTP 5xx and 408                             -> Unavailable (retried)
//   timeout                                      -> DeadlineExceeded (retried)
//   HTTP 429 (Retry-After reported)              -> ResourceExhausted (retried)
//   certificate not trusted, STARTTLS missing,
//   credentials refused, HTTP 401 and 403        -> PermissionDenied (given up)
//   other HTTP 4xx, 3xx (redirects are not
//   followed), malformed URL                     -> InvalidArgument (given up)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <curl/curl.h>

#include "airlock/cpp/status.hpp"

namespace airlock::notifiers {

// A failed libcurl transfer to `what` ("webhook 127.0.0.1", "Slack"), with
// curl's error detail unless it contains one of `secrets` (then only the
// generic description of the code).
Status StatusForCurl(CURLcode code, std::string_view what, std::string_view detail,
                     const std::vector<std::string_view>& secrets = {});

// An HTTP answer: Ok for 2xx, otherwise as above. `body` (already bounded)
// is quoted shortly, with control characters removed. `retry_after_s` < 0
// when the answer had none.
Status StatusForHttp(long status, std::string_view what, std::string_view body, long retry_after_s);

// An SMTP reply code (the last one libcurl saw) after a failed transfer:
// 4xx are transient, 5xx permanent (535/530: credentials refused).
Status StatusForSmtp(long reply_code, std::string_view what, std::string_view detail);

}  // namespace airlock::notifiers
