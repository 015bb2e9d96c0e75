#include "kernel/api/http_message.h"

#include <iterator>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

namespace airlock::http_internal {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Field values may hold HTAB, visible ASCII and obs-text, nothing that could
// end the line.
bool IsFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

std::optional<HttpRequest> BuildHttpRequest(ParsedRequest& message) {
  HttpRequest request;
  request.target = std::string(message.target());
  const auto parsed = boost::urls::parse_origin_form(request.target);
  if (!parsed) return std::nullopt;
  request.path = parsed->path();
  if (request.path.find('\0') != std::string::npos) return std::nullopt;
  for (auto param : parsed->params()) {
    request.query.emplace_back(std::move(param.key), std::move(param.value));
  }
  request.method = std::string(message.method_string());
  request.headers.reserve(static_cast<size_t>(std::distance(message.begin(), message.end())));
  for (const auto& field : message) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(message.body());
  return request;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsAcceptableField(std::string_view name, std::string_view value) {
  return name.size() <= kMaxResponseFieldName && value.size() <= kMaxResponseFieldValue &&
         IsToken(name) && IsFieldValue(value);
}

bool IsFramingHeader(std::string_view name) {
  return beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
         beast::iequals(name, "connection") || beast::iequals(name, "keep-alive") ||
         beast::iequals(name, "upgrade");
}

void PrepareResponseHeader(http::response_header<>& out, unsigned version,
                           const HttpResponse& response) {
  out.version(version);
  out.result(response.status);
  for (const auto& [name, value] : response.headers) {
    if (IsFramingHeader(name)) continue;
    if (!IsAcceptableField(name, value)) {
      // The name is safe to log once it is a short token; values never are.
      if (IsToken(name) && name.size() <= kMaxResponseFieldName) {
        spdlog::warn("http: dropped response header {} with an invalid value", name);
      } else {
        spdlog::warn("http: dropped a response header with an invalid name");
      }
      continue;
    }
    out.insert(name, value);
  }
  out.set(http::field::content_type, IsAcceptableField("Content-Type", response.content_type)
                                         ? response.content_type
                                         : std::string("application/octet-stream"));
  out.set(http::field::cache_control, "no-store");
  out.set("X-Content-Type-Options", "nosniff");
}

}  // namespace airlock::http_internal
