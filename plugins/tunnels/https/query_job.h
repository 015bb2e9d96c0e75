// The work a request hands to a query thread: run SQL or list tables through
// the host's channel and answer on the connection. channel.Query blocks, so
// this never runs on an I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "endpoint.h"
#include "response_channel.h"

namespace airlock::tunnels::https {

struct QueryLimits {
  uint64_t max_rows = 100000;
  std::chrono::milliseconds timeout{30000};
  // Results up to this size are answered in one response with a real status;
  // beyond it the response streams in chunks of about this size.
  size_t stream_threshold_bytes = 64 * 1024;
};

// Runs `sql` on the endpoint's channel and answers on `out`:
//  - 200 {"columns","rows","row_count"} (streamed once larger than the threshold);
//  - 413 result_too_large beyond max_rows, 504 deadline_exceeded after the
//    timeout, 410 revoked when the endpoint closed, else the channel's error
//    with HttpStatusFor(code).
// Once streaming has begun the status cannot change: a later failure ends the
// document with an "error" member and closes the connection.
void RunQuery(EndpointState& endpoint, const std::string& sql, const QueryLimits& limits,
              ResponseChannel& out, unsigned version, bool keep_alive);

// Answers with the channel's tables document, or its error.
void RunTables(EndpointState& endpoint, ResponseChannel& out, unsigned version, bool keep_alive);

}  // namespace airlock::tunnels::https
