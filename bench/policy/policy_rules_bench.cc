// Decisions per second and latency percentiles of the rules policy plugin
// evaluated through the C ABI (JSON in, JSON out, as the kernel calls it),
// with 1, 100 and 10,000 auto-approving rules, at 1 and 2 threads.
//
// Rule shapes (every one an allow without approval):
//   - per-dataset rules: rule i names dataset "ds-i" and group "g-(i % 50)";
//   - 1 in 10 rules names "*" for one user "u-i" (never the benchmark user);
//   - the request asks for 3 datasets as a principal in 3 groups, so the
//     decision combines 3 covering rules whatever the document size.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/support/dl_plugin.h"

namespace {

using airlock::Json;
using airlock::testing::DlInstance;
using airlock::testing::DlPlugin;
using airlock::testing::FakeHost;

Json Document(int rules) {
  Json doc = {{"version", 1}, {"rules", Json::array()}};
  for (int i = 0; i < rules; ++i) {
    Json rule = {{"name", "rule-" + std::to_string(i)}, {"effect", "allow"}};
    if (i % 10 == 9) {
      rule["subjects"] = {{"users", {"u-" + std::to_string(i)}}};
      rule["datasets"] = {"*"};
    } else {
      rule["subjects"] = {{"groups", {"g-" + std::to_string(i % 50)}}};
      rule["datasets"] = {"ds-" + std::to_string(i)};
      rule["max_window_seconds"] = 600 + i;
      if (i % 4 == 0) {
        rule["obligations"] = {{"ds-" + std::to_string(i),
                                {{"columns", {"a", "b", "c"}}, {"masks", {{"b", "hash"}}}}}};
      }
    }
    doc["rules"].push_back(rule);
  }
  return doc;
}

std::string InputFor(int rules) {
  // Datasets 0, 1, 2 (clamped to the document): groups g-0, g-1, g-2 cover them.
  std::vector<std::string> datasets;
  for (int i = 0; i < std::min(rules, 3); ++i) datasets.push_back("ds-" + std::to_string(i));
  Json input = {
      {"principal", {{"subject", "bench"}, {"kind", "human"}, {"groups", {"g-0", "g-1", "g-2"}}}},
      {"request",
       {{"id", "req_bench"},
        {"datasets", datasets},
        {"window_seconds", 600},
        {"purpose", "bench"}}},
      {"datasets", Json::array()},
      {"now", 1767225600}};
  for (const auto& d : datasets) input["datasets"].push_back({{"name", d}, {"tags", {"sales"}}});
  return input.dump();
}

struct Loaded {
  FakeHost host;
  std::unique_ptr<DlPlugin> plugin;
  std::unique_ptr<DlInstance<airlock_type_policy_vtable>> instance;
};

Loaded& PluginWith(int rules) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<Loaded>> cache;
  std::lock_guard lock(mutex);
  auto& slot = cache[rules];
  if (!slot) {
    slot = std::make_unique<Loaded>();
    std::string error;
    slot->plugin = DlPlugin::Load(AIRLOCK_PLUGIN_DIR "/airlock_policy_rules.so",
                                  slot->host.services(), &error);
    if (!slot->plugin) std::abort();
    slot->instance = std::make_unique<DlInstance<airlock_type_policy_vtable>>(
        slot->plugin->vtable<airlock_type_policy_vtable>(), Document(rules).dump());
    if (!slot->instance->ok()) std::abort();
  }
  return *slot;
}

void BM_RulesEvaluate(benchmark::State& state) {
  const int rules = static_cast<int>(state.range(0));
  Loaded& loaded = PluginWith(rules);
  const auto& table = loaded.plugin->vtable<airlock_type_policy_vtable>();
  const std::string input = InputFor(rules);
  std::vector<double> micros;
  micros.reserve(1 << 16);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    airlock::abi::BufferHolder buffer;
    airlock::abi::ErrorHolder error;
    if (table.evaluate(loaded.instance->get(), input.data(), input.size(), buffer.get(),
                       error.get()) != AIRLOCK_OK ||
        buffer.view().find("\"allow\"") == std::string_view::npos) {
      state.SkipWithError("evaluation failed or did not allow");
      break;
    }
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  state.SetItemsProcessed(state.iterations());
  if (!micros.empty()) {
    std::sort(micros.begin(), micros.end());
    auto pct = [&](double p) { return micros[static_cast<size_t>(p * (micros.size() - 1))]; };
    state.counters["p50_us"] = pct(0.50);
    state.counters["p95_us"] = pct(0.95);
    state.counters["p99_us"] = pct(0.99);
  }
}
BENCHMARK(BM_RulesEvaluate)->Arg(1)->Arg(100)->Arg(10000)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
