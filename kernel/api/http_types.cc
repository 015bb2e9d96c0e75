#include "kernel/api/http_types.h"

#include <cstddef>

namespace airlock {
namespace {

char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool AsciiIEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (AsciiIEquals(key, name)) return value;
  }
  return {};
}

std::optional<std::string_view> HttpRequest::query_param(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

HttpResponse HttpResponse::Json(unsigned status, const nlohmann::json& body) {
  HttpResponse response;
  response.status = status;
  // Invalid UTF-8 in a string is replaced rather than thrown: a response must
  // always be producible, whatever bytes a handler echoed.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

HttpResponse HttpResponse::RunOnHandlerPool() {
  HttpResponse response;
  response.run_on_handler_pool = true;
  return response;
}

HttpResponse HttpResponse::Error(unsigned status, std::string_view error,
                                 std::string_view message) {
  return Json(status, nlohmann::json{{"error", error}, {"message", message}});
}

}  // namespace airlock
