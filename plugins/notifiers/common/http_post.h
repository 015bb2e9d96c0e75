// One HTTP(S) POST of a JSON document through libcurl: TLS verified, bounded
// in time and in how much of the answer is read, mapped onto the status codes
// the kernel retries on (see transfer_status.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "common/curl_handles.h"

namespace airlock::notifiers {

// At most this much of an answer is kept; the rest is not read.
inline constexpr size_t kMaxAnswerBytes = 64 * 1024;

struct HttpPost {
  // May be a secret (a Slack webhook URL): it never appears in a message.
  std::string_view url;
  // "https" or "http,https": what the URL may use, enforced by libcurl too.
  const char* protocols = "https";
  // Extra header lines ("Name: value"); Content-Type is always JSON.
  std::vector<std::string> headers;
  std::string_view body;
  TransferLimits limits;
  // Names the receiver in messages ("webhook 127.0.0.1", "Slack").
  std::string what;
  // Strings that must not appear in messages (curl's error text is dropped
  // when it contains one).
  std::vector<std::string_view> secrets;
};

struct HttpAnswer {
  long status = 0;
  std::string body;         // at most kMaxAnswerBytes
  long retry_after_s = -1;  // Retry-After in seconds, or -1
};

// The answer when there is one (any status), or why there is none. A failure
// never names the URL or a header value.
Result<HttpAnswer> Post(const HttpPost& post);

// Post() and then StatusForHttp(): Ok only for 2xx.
Status PostAndCheck(const HttpPost& post);

}  // namespace airlock::notifiers
