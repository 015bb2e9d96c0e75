// Request → response helpers with no I/O: target parsing, bearer extraction,
// request body parsing, result format negotiation, JSON error responses and
// status mapping.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::tunnels::https {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

using ResponseHeader = http::response<http::empty_body>;

enum class Action {
  kQuery,             // POST /t/<id>/query
  kTables,            // GET  /t/<id>/tables
  kTable,             // GET  /t/<id>/tables/<percent-encoded name>
  kSession,           // GET  /t/<id>/session
  kExplorerRedirect,  // GET  /t/<id>            → 308 to /t/<id>/
  kExplorerPage,      // GET  /t/<id>/
  kExplorerScript,    // GET  /t/<id>/explorer.js
  kExplorerStyle,     // GET  /t/<id>/explorer.css
};

// The method an action answers to (POST for kQuery, GET otherwise).
http::verb MethodFor(Action action);
// Static explorer assets are served without a credential: they hold no data.
bool IsPublicAsset(Action action);

struct Route {
  std::string endpoint_id;
  Action action;
  std::string table;  // kTable only: the decoded name
};

// Request ids become path segments: 1..128 of [A-Za-z0-9._~-], not "." or "..".
bool IsValidEndpointId(std::string_view id);

// One of the paths above (a query string is ignored); nullopt for any other
// target, including a table name that is not valid percent-encoding or is
// longer than 256 bytes once decoded.
std::optional<Route> ParseTarget(std::string_view target);

// The decoded value of `name` in the target's query string; nullopt when absent.
std::optional<std::string> QueryParameter(std::string_view target, std::string_view name);

enum class ResultFormat { kJson, kCsv };

// "?format=json|csv" wins; otherwise CSV when Accept names text/csv, else
// JSON. InvalidArgument for another ?format value.
Result<ResultFormat> NegotiateFormat(const Request& request);

// The token of "Authorization: Bearer <token>"; nullopt when absent or not a
// bearer credential.
std::optional<std::string_view> BearerToken(const Request& request);

// The SQL of a query request: the body {"sql": "<non-empty string>"}, or with
// Content-Type application/sql or text/plain the body itself. InvalidArgument
// saying what is wrong.
Result<std::string> ParseQueryBody(const Request& request);

// Appends `text` as a JSON string literal. Invalid UTF-8 is replaced by
// U+FFFD so the document stays valid whatever bytes a source returns.
void AppendJsonString(std::string& out, std::string_view text);

// Appends `text` with every invalid UTF-8 sequence replaced by U+FFFD.
void AppendValidUtf8(std::string& out, std::string_view text);

// {"error":"<code>","message":"..."} (the kernel API's shape) with no-store
// caching headers.
Response JsonError(http::status status, std::string_view code, std::string_view message,
                   unsigned version, bool keep_alive);
Response JsonResponse(http::status status, std::string body, unsigned version, bool keep_alive);

// The two error members without braces: "error":"<code>","message":"..."
// (the message is cut at 1 KiB), to end a document or build one.
std::string ErrorMembers(std::string_view code, std::string_view message);

// Headers every tunnel response carries (no-store, nosniff, no referrer).
template <typename Message>
void SetCommonHeaders(Message& message) {
  message.set(http::field::cache_control, "no-store");
  message.set("X-Content-Type-Options", "nosniff");
  message.set("Referrer-Policy", "no-referrer");
}

// Why an endpoint is closed, as the tunnel tells it: 410 with the reason as
// the error code ("revoked", "window_ended", "kernel_shutdown",
// "request_failed") and a sentence saying what happened.
struct ClosedText {
  http::status status;
  std::string_view code;
  std::string_view message;
};
ClosedText DescribeClosed(sdk::CloseReason reason);

// The JSON answer to a request for an endpoint closed for `reason`.
Response ClosedError(sdk::CloseReason reason, unsigned version, bool keep_alive);

// The HTTP status that reports a query or channel failure of this code.
http::status HttpStatusFor(StatusCode code);

}  // namespace airlock::tunnels::https
