// Concurrent users against one ready request, on one thread: every user is a
// coroutine on a single io_context with its own connection (HTTPS tunnel:
// Beast over TLS, keep-alive; pgwire: libpq in non-blocking mode, its socket
// watched by Asio), so 1000 users need 1000 connections, not 1000 threads.
//
// A user connects, waits for the common start, then runs the query set in a
// loop until the common deadline. A failed query (transport error, non-200,
// an error document, a PostgreSQL error) counts as a failure and the user
// reconnects before going on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/e2e/fixture.h"

namespace airlock::bench {

struct LoadLevel {
  int users = 0;
  int64_t successes = 0;
  int64_t failures = 0;
  int64_t connect_failures = 0;
  double seconds = 0;
  double avg_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
  double qps = 0;
  double error_rate = 0;
  std::string first_error;
};

// `transport` is "https" or "pgwire"; `duration_s` of timed load after every
// user has connected (or given up).
LoadLevel RunLoad(const Grant& grant, const std::string& transport, const std::string& ca_file,
                  int users, double duration_s, const std::vector<std::string>& queries);

}  // namespace airlock::bench
