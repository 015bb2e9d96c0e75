// The control plane under wrk: POST /v1/requests (auto-approved) and the
// authenticated GET /v1/requests/{id} at 1..256 keep-alive connections, plain
// and TLS, against nginx serving the same JSON bytes as a static file on the
// same machine (the ceiling).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/e2e/fixture.h"

namespace airlock::bench {

struct WrkResult {
  int connections = 0;
  double requests_per_s = 0;
  double avg_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0;
  int64_t requests = 0;
  int64_t errors = 0;  // non-2xx/3xx plus socket errors
  std::string error;   // wrk did not run
};

// Runs wrk against `url` with `lua` (a script body; may be empty).
WrkResult RunWrk(const std::string& url, int connections, double seconds, const std::string& lua,
                 const std::string& dir);

// The whole suite; returns its JSON section.
nlohmann::json RunControlPlane(Sources& sources, const std::string& dir,
                               const std::vector<int>& connections, double seconds);

}  // namespace airlock::bench
