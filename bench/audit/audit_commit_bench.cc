// Audit durability cost: AuditLog::Append (group commit: concurrent callers
// share one fdatasync) against the naive baseline of one write + fdatasync
// per record, on the same disk in the same run. Compare items_per_second of
// the two at equal thread counts; the ratio is the figure that matters.
#include <fcntl.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <string>

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

void BM_AuditGroupCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    std::filesystem::remove(Dir() + "/audit.log");
    std::filesystem::remove(Dir() + "/audit.log.head");
    Log() = std::move(airlock::AuditLog::Open(Dir() + "/audit.log")).value();
  }
  for (auto _ : state) {
    auto s = Log()->Append({{"event", "request.submitted"}, {"request_id", "req_bench"}});
    if (!s.ok()) state.SkipWithError(s.message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) state.counters["flushes"] = static_cast<double>(Log()->flush_count());
}
BENCHMARK(BM_AuditGroupCommit)->ThreadRange(1, 64)->UseRealTime();

int g_fd = -1;

void BM_BaselineFsyncPerRecord(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_fd = ::open((Dir() + "/naive.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  }
  const std::string line = R"({"event":"request.submitted","request_id":"req_bench"})" "\n";
  for (auto _ : state) {
    if (::write(g_fd, line.data(), line.size()) < 0 || ::fdatasync(g_fd) != 0) {
      state.SkipWithError("write failed");
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) ::close(g_fd);
}
BENCHMARK(BM_BaselineFsyncPerRecord)->ThreadRange(1, 64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
