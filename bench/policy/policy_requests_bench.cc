// POST /v1/requests with a rules policy of 1, 100 or 10,000 rules, in two
// modes that share the kernel configuration:
//
//   in-process  the kernel (KernelApp: real plugins, audit log and state
//               store on disk) runs inside this process and C threads call
//               its request handler directly, as the HTTP server's handler
//               threads do: the cost of deciding and recording an ask.
//   http        a real airlockd (release build) on loopback and C keep-alive
//               HTTP clients: the same plus sockets and HTTP parsing.
//
// Every request is decided `needs_approval`, so the measured path is
// authenticate -> validate -> policy -> audit (submitted, evaluated, pending;
// one group) -> state store save -> answer, with no enclave.
//
//   policy_requests_bench [requests_per_client_at_4=500] [client_levels=4,32]
//                         [modes=in-process,http] [rules=1,100,10000]
//
// Every level sends the same total: requests_per_client * 4.
//
// Prints one line per mode, rule count and level: requests/s, latency
// percentiles and the kernel's CPU time per request (user + system; a figure
// that holds up on a busy machine where wall-clock rates do not); over HTTP
// also the clients' CPU time per request, which the same cores paid.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kernel/core/config.h"
#include "kernel/main/kernel_app.h"
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
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
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

const char* kBody = R"({"datasets": ["orders"], "window_seconds": 600, "purpose": "bench"})";

struct Sample {
  std::vector<double> latencies_ms;
  int failures = 0;
  std::string first_error;
};

// CPU seconds (user + system) a process has used so far.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised command name; utime and stime are 14 and 15.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Runs `clients` threads, each sending `per_client` asks through `send`
// (which returns the HTTP status and body), and records each latency.
template <class MakeSender>
Sample Drive(int clients, int per_client, MakeSender make_sender) {
  std::vector<std::vector<double>> latencies(clients);
  std::vector<Sample> per_thread(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto send = make_sender();
      auto& sample = per_thread[c];
      sample.latencies_ms.reserve(per_client);
      for (int i = 0; i < per_client; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        auto [status, body] = send();
        sample.latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
        if (status != 201 && sample.failures++ == 0) {
          sample.first_error = std::to_string(status) + " " + body;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Sample all;
  for (auto& sample : per_thread) {
    all.latencies_ms.insert(all.latencies_ms.end(), sample.latencies_ms.begin(),
                            sample.latencies_ms.end());
    if (sample.failures > 0 && all.failures == 0) all.first_error = sample.first_error;
    all.failures += sample.failures;
  }
  std::sort(all.latencies_ms.begin(), all.latencies_ms.end());
  return all;
}

// `client_cpu_seconds`: what the load generator (this process's client
// threads) used, when it is not the kernel itself; it shares the machine's
// cores with the kernel, so a reader needs it to read the rate.
bool Report(const char* mode, int rules, int clients, const Sample& sample, double seconds,
            double cpu_seconds, double client_cpu_seconds = -1) {
  const auto& all = sample.latencies_ms;
  auto pct = [&](double p) { return all[static_cast<size_t>(p * (all.size() - 1))]; };
  const double n = static_cast<double>(all.size());
  std::printf(
      "mode=%-10s rules=%-6d clients=%-4d requests=%zu  %8.0f req/s  p50=%.2f ms  "
      "p95=%.2f ms  p99=%.2f ms  kernel_cpu=%.0f us/req  failures=%d",
      mode, rules, clients, all.size(), n / seconds, pct(0.5), pct(0.95), pct(0.99),
      cpu_seconds * 1e6 / n, sample.failures);
  if (client_cpu_seconds >= 0)
    std::printf("  client_cpu=%.0f us/req", client_cpu_seconds * 1e6 / n);
  std::printf("\n");
  if (sample.failures > 0) std::fprintf(stderr, "first failure: %s\n", sample.first_error.c_str());
  std::fflush(stdout);
  return sample.failures == 0;
}

bool RunOverHttp(int rules, int per_client, int clients) {
  TempDir dir("airlock-bench-policy-");
  const TestPki pki = GenerateTestPki(dir.path());
  KernelProcess kernel(dir.path(), Config(dir.path(), pki, rules));
  if (!kernel.Start()) {
    std::fprintf(stderr, "kernel did not start:\n%s\n", kernel.log().c_str());
    return false;
  }
  const airlock::test::Headers headers = {{"Authorization", std::string("Bearer ") + kToken},
                                          {"Content-Type", "application/json"}};
  const double cpu0 = ProcessCpuSeconds(kernel.pid());
  const double client_cpu0 = SelfCpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  const Sample sample = Drive(clients, per_client, [&] {
    return [client = std::make_shared<HttpClient>("127.0.0.1", kernel.port()), &headers] {
      auto r = client->Post("/v1/requests", kBody, headers);
      return std::pair<unsigned, std::string>(r.status, r.body);
    };
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = ProcessCpuSeconds(kernel.pid()) - cpu0;
  const double client_cpu = SelfCpuSeconds() - client_cpu0;
  kernel.Stop();
  return Report("http", rules, clients, sample, seconds, cpu, client_cpu);
}

bool RunInProcess(int rules, int per_client, int clients) {
  TempDir dir("airlock-bench-policy-");
  const TestPki pki = GenerateTestPki(dir.path());
  auto config = airlock::ParseKernelConfig(Config(dir.path(), pki, rules),
                                           dir.path() + "/airlock.json", AIRLOCK_PLUGIN_DIR);
  if (!config.ok()) {
    std::fprintf(stderr, "bad configuration: %s\n", config.status().message().c_str());
    return false;
  }
  auto app = airlock::KernelApp::Start(std::move(config).value());
  if (!app.ok()) {
    std::fprintf(stderr, "kernel did not start: %s\n", app.status().message().c_str());
    return false;
  }
  airlock::HttpRequest ask;
  ask.method = "POST";
  ask.target = ask.path = "/v1/requests";
  ask.headers = {{"Authorization", std::string("Bearer ") + kToken},
                 {"Content-Type", "application/json"}};
  ask.body = kBody;
  ask.remote_address = "127.0.0.1:1";
  const airlock::KernelApp& kernel = **app;
  const double cpu0 = SelfCpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  const Sample sample = Drive(clients, per_client, [&] {
    return [&] {
      airlock::HttpResponse r = kernel.Handle(ask);
      return std::pair<unsigned, std::string>(r.status, r.body);
    };
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = SelfCpuSeconds() - cpu0;
  (*app)->Stop();
  return Report("in-process", rules, clients, sample, seconds, cpu);
}

std::vector<std::string> SplitList(std::string list) {
  std::vector<std::string> items;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    items.push_back(list.substr(0, comma));
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  return items;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // the in-process kernel's start-up chatter
  const int per_client = argc > 1 ? std::atoi(argv[1]) : 500;
  // Group commit turns concurrency into throughput, so the rate is read per level.
  std::vector<int> levels;
  for (const auto& level : SplitList(argc > 2 ? argv[2] : "4,32")) {
    levels.push_back(std::atoi(level.c_str()));
  }
  const std::vector<std::string> modes = SplitList(argc > 3 ? argv[3] : "in-process,http");
  std::vector<int> rule_counts;
  for (const auto& count : SplitList(argc > 4 ? argv[4] : "1,100,10000")) {
    rule_counts.push_back(std::atoi(count.c_str()));
    if (rule_counts.back() < 1) {
      std::fprintf(stderr, "rule counts are positive: '%s'\n", count.c_str());
      return 2;
    }
  }
  bool ok = true;
  for (const auto& mode : modes) {
    if (mode != "in-process" && mode != "http") {
      std::fprintf(stderr, "unknown mode '%s' (in-process, http)\n", mode.c_str());
      return 2;
    }
    for (int rules : rule_counts) {
      for (int clients : levels) {
        const int each = std::max(1, per_client * 4 / clients);
        ok = (mode == "http" ? RunOverHttp(rules, each, clients)
                             : RunInProcess(rules, each, clients)) &&
             ok;
      }
    }
  }
  return ok ? 0 : 1;
}
