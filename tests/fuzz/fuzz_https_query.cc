// The HTTPS tunnel's request parsing: the bytes a client sends go through
// Beast's request parser with the tunnel's limits, then through every pure
// step the router takes before a query runs (http_util.h): the target
// (endpoint id, action, percent-decoded table name), query parameters,
// bearer credential, result format negotiation and the query body (JSON
// {"sql": ...} or plain SQL). Error answers echo parts of the request.
//
// Checked beyond the sanitizers: text written into JSON answers is valid
// UTF-8 and parses back to the same string; a parsed route names a valid
// endpoint id.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "plugins/tunnels/https/config.h"
#include "plugins/tunnels/https/http_util.h"

namespace {

namespace https = airlock::tunnels::https;
namespace http = boost::beast::http;

// The tunnel's request header limit (session.cc).
constexpr std::uint32_t kHeaderLimit = 8 * 1024;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "https tunnel: %s\n", what);
  std::abort();
}

// AppendJsonString must yield a JSON string literal whose value is the input
// with invalid UTF-8 replaced; AppendValidUtf8 the same text unquoted.
void CheckJsonText(std::string_view text) {
  std::string literal;
  https::AppendJsonString(literal, text);
  nlohmann::json parsed = nlohmann::json::parse(literal, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_string()) Fail("AppendJsonString is not a JSON string");
  std::string valid;
  https::AppendValidUtf8(valid, text);
  if (parsed.get_ref<const std::string&>() != valid) Fail("JSON text and valid UTF-8 disagree");
}

void Route(https::Request& request) {
  const std::string_view target = request.target();
  if (auto route = https::ParseTarget(target)) {
    if (!https::IsValidEndpointId(route->endpoint_id)) Fail("a route with an invalid endpoint id");
    (void)https::MethodFor(route->action);
    (void)https::IsPublicAsset(route->action);
    CheckJsonText(route->table);
  }
  for (const char* name : {"format", "sql", "limit"}) {
    if (auto value = https::QueryParameter(target, name)) CheckJsonText(*value);
  }
  (void)https::BearerToken(request);
  auto format = https::NegotiateFormat(request);
  if (!format.ok()) CheckJsonText(format.status().message());
  auto sql = https::ParseQueryBody(request);
  if (sql.ok()) {
    CheckJsonText(*sql);
  } else {
    (void)https::ErrorMembers("invalid_argument", sql.status().message());
    (void)https::JsonError(http::status::bad_request, "invalid_argument", sql.status().message(),
                           request.version(), request.keep_alive());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const https::HttpsTunnelConfig config;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < 4 && !rest.empty(); ++i) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(config.max_body_bytes);
    parser.eager(true);
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      const size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      // Beast asks for more (or, with an empty buffer mid-body, takes
      // nothing): the stream has ended there.
      if (ec == http::error::need_more || (!ec && used == 0)) {
        ec = {};
        if (used == 0) {
          parser.put_eof(ec);
          if (!ec && !parser.is_done()) return 0;
          break;
        }
        continue;
      }
      if (ec) return 0;
    }
    if (ec) return 0;
    https::Request request = parser.release();
    const bool keep_alive = request.keep_alive();
    Route(request);
    if (!keep_alive) break;
  }
  return 0;
}
