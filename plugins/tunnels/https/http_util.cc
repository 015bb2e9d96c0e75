#include "http_util.h"

#include <cstdio>

#include <boost/beast/core/string.hpp>

#include "airlock/cpp/values.hpp"

namespace airlock::tunnels::https {
namespace {

constexpr size_t kMaxEndpointIdLength = 128;
constexpr size_t kMaxTableNameLength = 256;

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "%2F" → "/", "+" stays "+"; nullopt for a truncated or non-hex escape.
std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = HexValue(text[i + 1]);
    const int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

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

http::verb MethodFor(Action action) {
  return action == Action::kQuery ? http::verb::post : http::verb::get;
}

bool IsPublicAsset(Action action) {
  return action == Action::kExplorerRedirect || action == Action::kExplorerPage ||
         action == Action::kExplorerScript || action == Action::kExplorerStyle;
}

std::optional<Route> ParseTarget(std::string_view target) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  constexpr std::string_view kPrefix = "/t/";
  if (!target.starts_with(kPrefix)) return std::nullopt;
  target.remove_prefix(kPrefix.size());
  const size_t slash = target.find('/');
  const std::string_view id = target.substr(0, slash);
  if (!IsValidEndpointId(id)) return std::nullopt;
  Route route{std::string(id), Action::kExplorerRedirect, {}};
  if (slash == std::string_view::npos) return route;
  const std::string_view rest = target.substr(slash + 1);
  if (rest.empty()) {
    route.action = Action::kExplorerPage;
  } else if (rest == "explorer.js") {
    route.action = Action::kExplorerScript;
  } else if (rest == "explorer.css") {
    route.action = Action::kExplorerStyle;
  } else if (rest == "query") {
    route.action = Action::kQuery;
  } else if (rest == "tables") {
    route.action = Action::kTables;
  } else if (rest == "session") {
    route.action = Action::kSession;
  } else if (rest.starts_with("tables/")) {
    auto name = PercentDecode(rest.substr(std::string_view("tables/").size()));
    if (!name.has_value() || name->empty() || name->size() > kMaxTableNameLength) {
      return std::nullopt;
    }
    route.action = Action::kTable;
    route.table = std::move(*name);
  } else {
    return std::nullopt;
  }
  return route;
}

std::optional<std::string> QueryParameter(std::string_view target, std::string_view name) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return PercentDecode(pair.substr(eq + 1)).value_or(std::string());
  }
  return std::nullopt;
}

Result<ResultFormat> NegotiateFormat(const Request& request) {
  const std::string_view target(request.target().data(), request.target().size());
  if (auto format = QueryParameter(target, "format"); format.has_value()) {
    if (*format == "json") return ResultFormat::kJson;
    if (*format == "csv") return ResultFormat::kCsv;
    return Status::InvalidArgument("format must be json or csv");
  }
  auto accept = request.find(http::field::accept);
  if (accept == request.end()) return ResultFormat::kJson;
  // Any media range naming text/csv selects CSV; q-values are not weighed
  // (a client that accepts CSV at all asked for it on purpose).
  std::string_view ranges(accept->value().data(), accept->value().size());
  while (!ranges.empty()) {
    const size_t comma = ranges.find(',');
    std::string_view range = ranges.substr(0, comma);
    ranges = comma == std::string_view::npos ? std::string_view() : ranges.substr(comma + 1);
    range = range.substr(0, range.find(';'));
    range = Trim(range);
    if (boost::beast::iequals(range, "text/csv")) return ResultFormat::kCsv;
  }
  return ResultFormat::kJson;
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
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  return value;
}

Result<std::string> ParseQueryBody(const Request& request) {
  const std::string& body = request.body();
  std::string_view type;
  if (auto it = request.find(http::field::content_type); it != request.end()) {
    type = std::string_view(it->value().data(), it->value().size());
    type = Trim(type.substr(0, type.find(';')));
  }
  std::string sql;
  if (boost::beast::iequals(type, "application/sql") || boost::beast::iequals(type, "text/plain")) {
    sql = body;
  } else {
    if (body.empty()) return Status::InvalidArgument("request body must be {\"sql\": \"...\"}");
    Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
    if (!parsed.is_object()) return Status::InvalidArgument("request body must be a JSON object");
    auto it = parsed.find("sql");
    if (it == parsed.end()) return Status::InvalidArgument("request body is missing \"sql\"");
    if (!it->is_string()) return Status::InvalidArgument("\"sql\" must be a string");
    sql = it->get<std::string>();
  }
  if (sql.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument("the SQL must not be empty");
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

void AppendValidUtf8(std::string& out, std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      out.push_back(text[i++]);
      continue;
    }
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
}

std::string ErrorMembers(std::string_view code, std::string_view message) {
  std::string out = "\"error\":";
  AppendJsonString(out, code);
  out += ",\"message\":";
  AppendJsonString(out, message.substr(0, 1024));
  return out;
}

Response JsonResponse(http::status status, std::string body, unsigned version, bool keep_alive) {
  Response res{status, version};
  res.set(http::field::content_type, "application/json");
  SetCommonHeaders(res);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response JsonError(http::status status, std::string_view code, std::string_view message,
                   unsigned version, bool keep_alive) {
  return JsonResponse(status, "{" + ErrorMembers(code, message) + "}", version, keep_alive);
}

ClosedText DescribeClosed(sdk::CloseReason reason) {
  switch (reason) {
    case sdk::CloseReason::kWindowEnded:
      return {http::status::gone, "window_ended",
              "the access window of this request has ended; ask for a new request"};
    case sdk::CloseReason::kShutdown:
      return {http::status::gone, "kernel_shutdown",
              "the access ended when the Airlock kernel shut down"};
    case sdk::CloseReason::kFailed:
      return {http::status::gone, "request_failed", "the request failed and its data is gone"};
    case sdk::CloseReason::kRevoked:
      break;
  }
  return {http::status::gone, "revoked", "this endpoint has been revoked"};
}

Response ClosedError(sdk::CloseReason reason, unsigned version, bool keep_alive) {
  const ClosedText text = DescribeClosed(reason);
  return JsonError(text.status, text.code, text.message, version, keep_alive);
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
