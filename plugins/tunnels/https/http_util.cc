#include "http_util.h"

#include <cstdio>

#include "airlock/cpp/values.hpp"

namespace airlock::tunnels::https {
namespace {

constexpr size_t kMaxEndpointIdLength = 128;

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == '-';
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  const auto cont = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    const unsigned char c1 = byte(i + 1);
    if (c == 0xE0 && c1 < 0xA0) return 0;   // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    const unsigned char c1 = byte(i + 1);
    if (c == 0xF0 && c1 < 0x90) return 0;   // overlong
    if (c == 0xF4 && c1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

bool IsValidEndpointId(std::string_view id) {
  if (id.empty() || id.size() > kMaxEndpointIdLength || id == "." || id == "..") return false;
  for (char c : id) {
    if (!IsIdChar(c)) return false;
  }
  return true;
}

std::optional<Route> ParseTarget(std::string_view target) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  constexpr std::string_view kPrefix = "/t/";
  if (!target.starts_with(kPrefix)) return std::nullopt;
  target.remove_prefix(kPrefix.size());
  const size_t slash = target.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view id = target.substr(0, slash);
  const std::string_view rest = target.substr(slash + 1);
  if (!IsValidEndpointId(id)) return std::nullopt;
  if (rest == "query") return Route{std::string(id), Action::kQuery};
  if (rest == "tables") return Route{std::string(id), Action::kTables};
  return std::nullopt;
}

std::optional<std::string_view> BearerToken(const Request& request) {
  auto it = request.find(http::field::authorization);
  if (it == request.end()) return std::nullopt;
  std::string_view value(it->value().data(), it->value().size());
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || value[kScheme.size()] != ' ') return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = static_cast<char>(value[i] | 0x20);  // ASCII lower-case
    if (c != kScheme[i]) return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  return value;
}

Result<std::string> ParseQueryBody(std::string_view body) {
  if (body.empty()) return Status::InvalidArgument("request body must be {\"sql\": \"...\"}");
  Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!parsed.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  auto it = parsed.find("sql");
  if (it == parsed.end()) return Status::InvalidArgument("request body is missing \"sql\"");
  if (!it->is_string()) return Status::InvalidArgument("\"sql\" must be a string");
  std::string sql = it->get<std::string>();
  if (sql.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument("\"sql\" must not be empty");
  }
  return sql;
}

void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  out.push_back('"');
}

std::string ErrorObject(std::string_view code, std::string_view message) {
  std::string out = "{\"code\":";
  AppendJsonString(out, code);
  out += ",\"message\":";
  AppendJsonString(out, message.substr(0, 1024));
  out.push_back('}');
  return out;
}

Response JsonResponse(http::status status, std::string body, unsigned version, bool keep_alive) {
  Response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response JsonError(http::status status, std::string_view code, std::string_view message,
                   unsigned version, bool keep_alive) {
  return JsonResponse(status, "{\"error\":" + ErrorObject(code, message) + "}", version,
                      keep_alive);
}

http::status HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return http::status::ok;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotApplicable:
      return http::status::bad_request;
    case StatusCode::kNotFound:
      return http::status::not_found;
    case StatusCode::kPermissionDenied:
      return http::status::forbidden;
    case StatusCode::kUnauthenticated:
      return http::status::unauthorized;
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return http::status::service_unavailable;
    case StatusCode::kDeadlineExceeded:
      return http::status::gateway_timeout;
    case StatusCode::kResourceExhausted:
      return http::status::payload_too_large;
    case StatusCode::kNotImplemented:
      return http::status::not_implemented;
    case StatusCode::kTypeNotRepresentable:
      return http::status::unprocessable_entity;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
    case StatusCode::kConflict:
      return http::status::conflict;
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
      return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

}  // namespace airlock::tunnels::https
