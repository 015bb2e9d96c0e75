// Internal to the HTTP server: the pure steps between Beast's parsed message
// and the handler, and between the handler's answer and Beast's response.
// No I/O, so the same code serves sockets and the fuzz targets
// (tests/fuzz/fuzz_http_request.cc). Not for use outside kernel/api.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "kernel/api/http_types.h"

namespace airlock::http_internal {

using ParsedRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Builds the handler's view of a complete request: method, raw target, the
// percent-decoded path and query, headers in order, and the body (moved out
// of `message`). nullopt when the target is not origin-form or its path
// decodes to a NUL byte: the server answers 400 "malformed request target".
// The connection fields (remote_address, peer certificate, tls) are left for
// the caller.
std::optional<HttpRequest> BuildHttpRequest(ParsedRequest& message);

// The bounds on handler-supplied response headers (see HttpResponse::headers).
// Beast stores header offsets in 16 bits and would throw on larger fields; no
// legitimate response header comes near them.
inline constexpr size_t kMaxResponseFieldName = 256;
inline constexpr size_t kMaxResponseFieldValue = 16 * 1024;

// An RFC 9110 token (non-empty).
bool IsToken(std::string_view s);
// A header the server may send: a token name and a value without control
// characters other than HTAB, both within the bounds above.
bool IsAcceptableField(std::string_view name, std::string_view value);
// Headers that frame the message belong to the server, never to a handler.
bool IsFramingHeader(std::string_view name);

// Fills `out` from `response`: version, status, the handler's acceptable
// non-framing headers (others are dropped and logged by name when the name
// is safe to log), Content-Type and the headers every answer carries.
// Keep-alive and Content-Length are the caller's.
void PrepareResponseHeader(boost::beast::http::response_header<>& out, unsigned version,
                           const HttpResponse& response);

}  // namespace airlock::http_internal
