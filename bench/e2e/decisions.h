// Decisions over real HTTP against the same decisions in process: runs
// bench/policy's policy_requests_bench (built beside e2e_bench) in both modes
// for `rounds` rounds, alternating, and keeps each mode's median round. The
// HTTP layer's cost is the ratio of the two rates.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace airlock::bench {

nlohmann::json RunDecisions(const std::string& bench_dir, int rounds, int requests_per_client);

}  // namespace airlock::bench
