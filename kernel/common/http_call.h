// One HTTP(S) call over libcurl, TLS verified against the system's CAs or
// one CA file: the airlock CLI's client and the audit exporter's.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock {

struct HttpAnswer {
  long status = 0;
  std::string body;
};

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string ca_file;  // empty: the system's trust store
  long timeout_seconds = 60;
};

// Unavailable when no answer came (the server cannot be reached, TLS
// failed); any HTTP status is an answer.
Result<HttpAnswer> HttpSend(const HttpCall& call);

// `text` percent-encoded for a URL's query or path segment.
std::string UrlEncode(std::string_view text);

}  // namespace airlock
