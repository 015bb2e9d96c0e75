// Audit durability cost: AuditLog::Append (group commit: concurrent callers
// share one fdatasync, and consecutive groups overlap their syncs) against
// the naive baseline of one write + fdatasync per record, on the same disk in
// the same run, at 1, 4, 16 and 64 concurrent callers. Compare
// items_per_second of the two at equal caller counts; p50_us / p99_us are the
// latency of one Append (or one write + fdatasync) as its caller sees it.
#include <fcntl.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernel/audit/audit_log.h"

namespace {

std::string BenchDir() {
  auto dir = std::filesystem::temp_directory_path() / ("airlock-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

const std::string& Dir() {
  static const std::string dir = BenchDir();
  return dir;
}

std::unique_ptr<airlock::AuditLog>& Log() {
  static std::unique_ptr<airlock::AuditLog> log;
  return log;
}

// Per-call latencies of one benchmark run, merged from every caller thread.
// google-benchmark has no barrier after the timed loop, so thread 0 waits
// here until every thread has handed in its samples, then reports.
class Latencies {
 public:
  void Add(const std::vector<double>& samples) {
    std::lock_guard lock(mu_);
    all_.insert(all_.end(), samples.begin(), samples.end());
    ++threads_in_;
    cv_.notify_all();
  }

  // Thread 0 only: waits for `threads` hand-ins, sets the counters, resets.
  void Report(benchmark::State& state, int threads) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return threads_in_ == threads; });
    if (!all_.empty()) {
      std::sort(all_.begin(), all_.end());
      auto at = [&](double q) { return all_[static_cast<size_t>(q * (all_.size() - 1))]; };
      state.counters["p50_us"] = at(0.50);
      state.counters["p99_us"] = at(0.99);
    }
    all_.clear();
    threads_in_ = 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<double> all_;
  int threads_in_ = 0;
};

Latencies& Samples() {
  static Latencies latencies;
  return latencies;
}

double MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

void BM_AuditGroupCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    Log().reset();
    std::filesystem::remove(Dir() + "/audit.log");
    std::filesystem::remove(Dir() + "/audit.log.head");
    Log() = std::move(airlock::AuditLog::Open(Dir() + "/audit.log")).value();
  }
  std::vector<double> samples;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto s = Log()->Append({{"event", "request.submitted"}, {"request_id", "req_bench"}});
    samples.push_back(MicrosSince(start));
    if (!s.ok()) state.SkipWithError(s.message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  Samples().Add(samples);
  if (state.thread_index() == 0) {
    Samples().Report(state, state.threads());
    state.counters["flushes"] = static_cast<double>(Log()->flush_count());
  }
}
BENCHMARK(BM_AuditGroupCommit)->Threads(1)->Threads(4)->Threads(16)->Threads(64)->UseRealTime();

int g_fd = -1;

void BM_BaselineFsyncPerRecord(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_fd = ::open((Dir() + "/naive.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  }
  const std::string line = R"({"event":"request.submitted","request_id":"req_bench"})"
                           "\n";
  std::vector<double> samples;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (::write(g_fd, line.data(), line.size()) < 0 || ::fdatasync(g_fd) != 0) {
      state.SkipWithError("write failed");
    }
    samples.push_back(MicrosSince(start));
  }
  state.SetItemsProcessed(state.iterations());
  Samples().Add(samples);
  if (state.thread_index() == 0) {
    Samples().Report(state, state.threads());
    ::close(g_fd);
  }
}
BENCHMARK(BM_BaselineFsyncPerRecord)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  Log().reset();
  std::filesystem::remove_all(Dir());
  return 0;
}
