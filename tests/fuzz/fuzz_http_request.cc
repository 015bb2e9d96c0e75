// The HTTP API's request handling up to the handler: the bytes a client sends
// go through Beast's request parser with the server's limits
// (HttpServerOptions), become the handler's HttpRequest (BuildHttpRequest),
// reach a handler that echoes what it was given, and its answer becomes the
// response header the server sends (PrepareResponseHeader). Pipelined
// requests on one connection are followed while keep-alive holds.
//
// Checked beyond the sanitizers: whatever a request carried, the serialized
// response parses back as exactly one well-formed HTTP response (no header or
// response splitting through echoed bytes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "kernel/api/http_message.h"
#include "kernel/api/http_server.h"
#include "kernel/api/http_types.h"

namespace {

namespace http = boost::beast::http;
using airlock::HttpRequest;
using airlock::HttpResponse;

constexpr int kMaxRequestsPerInput = 8;

// A handler in the shape of the v1 API's: reads headers, query and a JSON
// body, and echoes request bytes into its answer, including into response
// headers ("X-Echo-*" request headers come back as they were sent).
HttpResponse EchoHandler(const HttpRequest& request) {
  nlohmann::json echo;
  echo["method"] = request.method;
  echo["path"] = request.path;
  for (const auto& [key, value] : request.query) echo["query"][key] = value;
  if (auto limit = request.query_param("limit")) echo["limit"] = *limit;
  echo["content_type"] = request.header("Content-Type");
  if (!request.body.empty()) {
    nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return HttpResponse::Error(400, "invalid_argument", request.body);
    if (body.is_object()) echo["keys"] = body.size();
  }
  HttpResponse response = HttpResponse::Json(200, echo);
  for (const auto& [name, value] : request.headers) {
    if (name.size() > 7 && boost::beast::iequals(std::string_view(name).substr(0, 7), "x-echo-")) {
      response.headers.emplace_back(name.substr(7), value);
    }
    if (boost::beast::iequals(name, "x-content-type")) response.content_type = value;
  }
  return response;
}

// What the server writes for `response`, serialized as on the wire.
std::string Serialize(const HttpResponse& response, unsigned version, bool keep_alive, bool head) {
  http::response<http::string_body> out;
  airlock::http_internal::PrepareResponseHeader(out.base(), version, response);
  out.keep_alive(keep_alive);
  out.content_length(response.body.size());
  if (!head) out.body() = response.body;
  std::ostringstream stream;
  stream << out;
  return stream.str();
}

// The serialized response must parse back whole, as one message.
void CheckResponse(const std::string& wire, bool head) {
  http::response_parser<http::string_body> parser;
  parser.skip(head);
  parser.body_limit(wire.size());
  parser.header_limit(static_cast<std::uint32_t>(wire.size()));
  boost::beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(wire), ec);
  size_t total = used;
  if (!ec && !parser.is_done()) {
    total += parser.put(boost::asio::buffer(wire.data() + used, wire.size() - used), ec);
  }
  if (ec || !parser.is_done() || total != wire.size()) {
    std::fprintf(stderr, "response does not parse back (%s):\n%s\n", ec.message().c_str(),
                 wire.c_str());
    std::abort();
  }
}

void Respond(const HttpResponse& response, unsigned version, bool keep_alive, bool head) {
  CheckResponse(Serialize(response, version, keep_alive, head), head);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const airlock::HttpServerOptions options;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < kMaxRequestsPerInput && !rest.empty(); ++i) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    parser.eager(true);
    boost::beast::error_code ec;
    bool header_checked = false;
    while (!parser.is_done()) {
      const size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      // Beast asks for more (or, with an empty buffer mid-body, takes
      // nothing): the stream has ended there.
      if (ec == http::error::need_more || (!ec && used == 0)) {
        ec = {};
        if (used == 0) {
          parser.put_eof(ec);  // the connection ends here
          if (!ec && !parser.is_done()) ec = http::error::partial_message;
          break;
        }
        continue;
      }
      if (ec) break;
      if (parser.is_header_done() && !header_checked) {
        header_checked = true;
        const auto& header = parser.get();
        if (static_cast<size_t>(std::distance(header.begin(), header.end())) >
            options.max_header_count) {
          return 0;  // 431 too_many_headers, connection closes
        }
      }
    }
    if (ec) {
      // The session answers 413/431/400 and closes, or just closes.
      if (ec != http::error::end_of_stream && ec != http::error::partial_message) {
        Respond(HttpResponse::Error(400, "bad_request", "malformed HTTP request"), 11, false,
                false);
      }
      return 0;
    }
    auto& message = parser.get();
    if (message.version() != 10 && message.version() != 11) return 0;
    const bool keep_alive = message.keep_alive();
    const unsigned version = message.version();
    const bool head = message.method() == http::verb::head;
    auto request = airlock::http_internal::BuildHttpRequest(message);
    if (!request) {
      Respond(HttpResponse::Error(400, "bad_request", "malformed request target"), version,
              keep_alive, head);
    } else {
      request->remote_address = "127.0.0.1:40000";
      Respond(EchoHandler(*request), version, keep_alive, head);
    }
    if (!keep_alive) break;
  }
  return 0;
}
