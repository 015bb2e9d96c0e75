// POST /v1/requests end to end: a real airlockd (release build) on loopback,
// C concurrent keep-alive clients, a rules policy of 1, 100 or 10,000 rules.
// Every request is decided `needs_approval`, so the measured path is
// authenticate -> validate -> audit (submitted) -> policy -> audit
// (evaluated, pending) -> state store save -> answer, with no enclave.
//
//   policy_requests_bench [requests_per_client_at_4=500] [client_levels=4,32]
//
// Every level sends the same total: requests_per_client * 4.
//
// Prints one line per rule count: requests/s and latency percentiles.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace {

using nlohmann::json;
using namespace airlock::test;

constexpr const char* kToken = "alk_bench_requester_token";

std::string Plugin(const std::string& name) {
  return std::string(AIRLOCK_PLUGIN_DIR) + "/" + name + ".so";
}

// `rules` rules; the requester's dataset "orders" is covered by rule 0 (one
// approver from owners); the others name other datasets and groups.
json Policy(int rules) {
  json doc = {{"version", 1}, {"rules", json::array()}};
  doc["rules"].push_back({{"name", "analysts-orders"},
                          {"effect", "allow"},
                          {"subjects", {{"groups", {"analysts"}}}},
                          {"datasets", {"orders"}},
                          {"approval", {{"groups", {"owners"}}, {"count", 1}}}});
  for (int i = 1; i < rules; ++i) {
    doc["rules"].push_back({{"name", "rule-" + std::to_string(i)},
                            {"effect", "allow"},
                            {"subjects", {{"groups", {"g-" + std::to_string(i % 50)}}}},
                            {"datasets", {"ds-" + std::to_string(i)}}});
  }
  return doc;
}

json Config(const std::string& dir, const TestPki& pki, int rules) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/orders.csv") << "order_id,amount\n10,100.5\n";
  return {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}, {"handler_threads", 64}}},
      {"state_dir", dir + "/state"},
      {"identity",
       {{{"name", "tokens"},
         {"plugin", Plugin("airlock_identity_static_tokens")},
         {"config",
          {{"tokens",
            {{{"sha256", Sha256HexOf(kToken)},
              {"subject", "alice"},
              {"kind", "human"},
              {"groups", {"analysts"}}}}}}}}}},
      {"policy",
       {{"name", "rules"}, {"plugin", Plugin("airlock_policy_rules")}, {"config", Policy(rules)}}},
      {"isolator", {{"name", "inprocess"}, {"plugin", Plugin("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", Plugin("airlock_connector_files")}, {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets", {{{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}}}},
      {"access", {{"admin_groups", {"admins"}}, {"reviewer_groups", {"owners"}}}}};
}

bool Run(int rules, int per_client, int clients) {
  TempDir dir("airlock-bench-policy-");
  const TestPki pki = GenerateTestPki(dir.path());
  KernelProcess kernel(dir.path(), Config(dir.path(), pki, rules));
  if (!kernel.Start()) {
    std::fprintf(stderr, "kernel did not start:\n%s\n", kernel.log().c_str());
    return false;
  }
  const std::string body = R"({"datasets": ["orders"], "window_seconds": 600, "purpose": "bench"})";
  const airlock::test::Headers headers = {{"Authorization", std::string("Bearer ") + kToken},
                                          {"Content-Type", "application/json"}};
  std::vector<std::vector<double>> latencies(clients);
  std::atomic<int> failures{0};
  std::string first_error;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client("127.0.0.1", kernel.port());
      latencies[c].reserve(per_client);
      for (int i = 0; i < per_client; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = client.Post("/v1/requests", body, headers);
        latencies[c].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
        if (r.status != 201 && failures++ == 0)
          first_error = std::to_string(r.status) + " " + r.body;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[static_cast<size_t>(p * (all.size() - 1))]; };
  std::printf(
      "rules=%-6d clients=%d requests=%zu  %8.0f req/s  p50=%.2f ms  p95=%.2f ms  "
      "p99=%.2f ms  failures=%d\n",
      rules, clients, all.size(), all.size() / seconds, pct(0.5), pct(0.95), pct(0.99),
      failures.load());
  if (failures > 0) std::fprintf(stderr, "first failure: %s\n", first_error.c_str());
  std::fflush(stdout);
  kernel.Stop();
  return failures == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int per_client = argc > 1 ? std::atoi(argv[1]) : 500;
  // Comma-separated client counts: group commit turns concurrency into
  // throughput, so the rate is read per level.
  std::vector<int> levels;
  for (std::string list = argc > 2 ? argv[2] : "4,32"; !list.empty();) {
    const size_t comma = list.find(',');
    levels.push_back(std::atoi(list.substr(0, comma).c_str()));
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  bool ok = true;
  for (int rules : {1, 100, 10000}) {
    for (int clients : levels)
      ok = Run(rules, std::max(1, per_client * 4 / clients), clients) && ok;
  }
  return ok ? 0 : 1;
}
