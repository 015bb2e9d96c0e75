// Request → response helpers with no I/O: target parsing, bearer extraction,
// request body parsing, JSON error responses and status mapping.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::tunnels::https {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

enum class Action { kQuery, kTables };

struct Route {
  std::string endpoint_id;
  Action action;
};

// Request ids become path segments: 1..128 of [A-Za-z0-9._~-], not "." or "..".
bool IsValidEndpointId(std::string_view id);

// "/t/<id>/query" or "/t/<id>/tables" (a query string is ignored); nullopt
// for any other target.
std::optional<Route> ParseTarget(std::string_view target);

// The token of "Authorization: Bearer <token>"; nullopt when absent or not a
// bearer credential.
std::optional<std::string_view> BearerToken(const Request& request);

// {"sql": "<non-empty string>"} → the SQL; InvalidArgument saying what is wrong.
Result<std::string> ParseQueryBody(std::string_view body);

// Appends `text` as a JSON string literal. Invalid UTF-8 is replaced by
// U+FFFD so the document stays valid whatever bytes a source returns.
void AppendJsonString(std::string& out, std::string_view text);

// {"error":{"code":..,"message":..}} with no-store caching headers.
Response JsonError(http::status status, std::string_view code, std::string_view message,
                   unsigned version, bool keep_alive);
Response JsonResponse(http::status status, std::string body, unsigned version, bool keep_alive);

// The error member alone: {"code":..,"message":..}.
std::string ErrorObject(std::string_view code, std::string_view message);

// The HTTP status that reports a query or channel failure of this code.
http::status HttpStatusFor(StatusCode code);

}  // namespace airlock::tunnels::https
