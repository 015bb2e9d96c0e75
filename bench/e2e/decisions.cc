#include "bench/e2e/decisions.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <regex>
#include <vector>

#include "bench/e2e/stats.h"
#include "tests/support/postgres/subprocess.h"

namespace airlock::bench {
namespace {

using nlohmann::json;

constexpr int kRules = 100;
constexpr int kClients = 32;

// One line of policy_requests_bench's output as JSON, or null.
json ParseLine(const std::string& line) {
  static const std::regex kLine(
      R"(mode=(\S+)\s+rules=(\d+)\s+clients=(\d+)\s+requests=(\d+)\s+([0-9.]+) req/s\s+)"
      R"(p50=([0-9.]+) ms\s+p95=([0-9.]+) ms\s+p99=([0-9.]+) ms\s+kernel_cpu=([0-9.]+) us/req\s+)"
      R"(failures=(\d+))");
  static const std::regex kClientCpu(R"(client_cpu=([0-9.]+) us/req)");
  std::smatch m;
  if (!std::regex_search(line, m, kLine)) return nullptr;
  json parsed = {{"mode", m[1].str()},
                 {"requests", std::stoll(m[4].str())},
                 {"requests_per_s", std::stod(m[5].str())},
                 {"p50_ms", std::stod(m[6].str())},
                 {"p95_ms", std::stod(m[7].str())},
                 {"p99_ms", std::stod(m[8].str())},
                 {"kernel_cpu_us", std::stod(m[9].str())},
                 {"failures", std::stoll(m[10].str())}};
  if (std::regex_search(line, m, kClientCpu)) parsed["client_cpu_us"] = std::stod(m[1].str());
  return parsed;
}

}  // namespace

json RunDecisions(const std::string& bench_dir, int rounds, int requests_per_client) {
  json out = {{"rules", kRules}, {"clients", kClients}, {"rounds", rounds}};
  std::map<std::string, std::vector<json>> runs;
  for (int round = 0; round < rounds; ++round) {
    // Alternate which mode goes first, so neither always meets a warmer disk.
    const std::string modes = round % 2 == 0 ? "in-process,http" : "http,in-process";
    auto r = test::pg_internal::RunProcess(
        {bench_dir + "/policy_requests_bench", std::to_string(requests_per_client * kClients / 4),
         std::to_string(kClients), modes, std::to_string(kRules)});
    if (r.exit_code != 0) {
      out["error"] = "policy_requests_bench exited " + std::to_string(r.exit_code) + ": " +
                     r.err.substr(0, 300);
      return out;
    }
    size_t start = 0;
    while (start < r.out.size()) {
      const size_t end = r.out.find('\n', start);
      const std::string line =
          r.out.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (json parsed = ParseLine(line); !parsed.is_null()) {
        Log("  decisions round %d %s: %.0f req/s, p99 %.2f ms", round,
            parsed["mode"].get<std::string>().c_str(), parsed["requests_per_s"].get<double>(),
            parsed["p99_ms"].get<double>());
        runs[parsed["mode"].get<std::string>()].push_back(std::move(parsed));
      }
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (auto& [mode, list] : runs) {
    std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
      return a["requests_per_s"].get<double>() < b["requests_per_s"].get<double>();
    });
    json median = list[list.size() / 2];
    median["rounds_requests_per_s"] = json::array();
    for (const json& run : list) median["rounds_requests_per_s"].push_back(run["requests_per_s"]);
    out[mode] = median;
  }
  if (out.contains("http") && out.contains("in-process")) {
    const double in_process = out["in-process"]["requests_per_s"].get<double>();
    out["http_vs_in_process"] =
        in_process > 0 ? out["http"]["requests_per_s"].get<double>() / in_process : 0;
  } else {
    out["error"] = "policy_requests_bench printed no figures for both modes";
  }
  return out;
}

}  // namespace airlock::bench
