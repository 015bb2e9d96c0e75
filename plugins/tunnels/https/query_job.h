// The work a request hands to a query thread: run SQL or look up the schema
// through the host's channel and answer on the connection. The channel's
// calls block, so this never runs on an I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "airlock/cpp/host.hpp"
#include "endpoint.h"
#include "http_util.h"
#include "response_channel.h"

namespace airlock::tunnels::https {

struct QueryLimits {
  uint64_t max_rows = 100000;
  std::chrono::milliseconds timeout{30000};
  // Within one batch, output is sent on whenever this much is pending, so a
  // huge batch never sits in memory twice.
  size_t chunk_bytes = 64 * 1024;
};

// Runs `sql` on the endpoint's channel and answers on `out` in `format`.
// The response header is held back until the first batch has been encoded
// (or chunk_bytes of output are pending):
// failures before that (SQL refused, max_rows within the first batch, timeout,
// revoked, expired) get a real status — 400/403 from the channel,
// 413 result_too_large, 504 deadline_exceeded, 410 revoked, 401 expired, else
// the channel's code with HttpStatusFor. Then every batch is written as it
// arrives (chunked); a later failure is reported in-band as result_format.h
// describes. Results with no batch at all are sent with Content-Length.
// A query stops when the endpoint closes, its window (not_after, by the
// host's clock) ends, the client goes away or the timeout passes.
void RunQuery(EndpointState& endpoint, const std::string& sql, ResultFormat format,
              const QueryLimits& limits, const sdk::Host& host, ResponseChannel& out,
              unsigned version, bool keep_alive);

// Answers with the channel's tables document {"tables":[{"name","rows",
// "columns":[{"name","type"}]}]}; with `table`, that one entry alone (404 when
// the channel lists no table of that name), or the channel's error.
void RunTables(EndpointState& endpoint, const std::optional<std::string>& table,
               ResponseChannel& out, unsigned version, bool keep_alive);

}  // namespace airlock::tunnels::https
