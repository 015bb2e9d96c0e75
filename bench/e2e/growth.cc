#include "bench/e2e/growth.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include "bench/e2e/stats.h"
#include "tests/support/postgres/subprocess.h"

namespace airlock::bench {
namespace {

using nlohmann::json;

constexpr int64_t kEnclaveMemoryBytes = int64_t{6} << 30;
constexpr int kMaxSources = 8;

std::string Label(int64_t rows) {
  if (rows >= 1'000'000) return std::to_string(rows / 1'000'000) + "m";
  return std::to_string(rows / 1'000) + "k";
}

// Samples a process's resident set every 20 ms until stopped; keeps the peak.
class RssSampler {
 public:
  explicit RssSampler(int pid) : pid_(pid), thread_([this] { Run(); }) {}
  ~RssSampler() { Stop(); }
  int64_t Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  void Run() {
    while (!stop_) {
      peak_ = std::max<int64_t>(peak_, ProcessMemory(pid_, "VmRSS"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  int pid_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> peak_{0};
  std::thread thread_;
};

struct Point {
  double ready_s = 0;
  int64_t enclave_peak_rss = 0;
  int64_t source_bytes = 0;
  int64_t rows = 0;
  int64_t kernel_rss_peak = 0;
  std::string error;
};

// One request over `datasets` through a running kernel: approval to ready,
// the enclave's peak memory, what the connectors delivered and the kernel's
// peak memory meanwhile. The request is revoked and its enclave waited out,
// so the next point starts from an empty host.
Point Once(test::KernelProcess& kernel, Api& api, const std::vector<std::string>& datasets) {
  Point p;
  const std::string id = api.Create(datasets, &p.error);
  if (id.empty()) return p;
  RssSampler kernel_rss(kernel.pid());
  const auto t0 = Clock::now();
  if (!api.Approve(id, &p.error) || !api.WaitReady(id, 1800, 5, &p.error)) {
    api.Revoke(id);
    return p;
  }
  p.ready_s = MsSince(t0) / 1000.0;
  p.kernel_rss_peak = kernel_rss.Stop();
  p.enclave_peak_rss = EnclavePeakRss(kernel.pid());
  const json progress = api.Get(id)["enclave"]["progress"];
  for (const auto& [name, lane] : progress.items()) {
    p.source_bytes += lane.value("bytes", int64_t{0});
    p.rows += lane.value("rows", int64_t{0});
  }
  api.Revoke(id);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!EnclavePids(kernel.pid()).empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return p;
}

// Seconds `psql` takes to \copy every row of `table` to /dev/null over TCP
// with the connector's TLS settings and role (the password in its
// environment, as the connector has it).
double PsqlCopySeconds(Sources& sources, const std::string& table, std::string* error) {
  const char* password = std::getenv("AIRLOCK_BENCH_PG_PASSWORD");
  const std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(sources.pg().port()) +
      " dbname=postgres user=reader sslmode=verify-ca sslrootcert=" + sources.pg_ca_file();
  const auto t0 = Clock::now();
  auto r = test::pg_internal::RunProcess(
      {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c",
       "\\copy public." + table + " TO '/dev/null'"},
      {std::string("PGPASSWORD=") + (password != nullptr ? password : "")});
  const double s = MsSince(t0) / 1000.0;
  if (r.exit_code != 0) {
    *error = "psql: " + r.err.substr(0, 300);
    return 0;
  }
  return s;
}

double Median(std::vector<double> v) {
  return Summarize(std::move(v)).p50;
}

json RowsPoint(Sources& sources, test::KernelProcess& kernel, Api& api, int64_t rows, int reps) {
  const std::string label = Label(rows);
  json out = {{"rows", rows}, {"repetitions", reps}};
  std::string error;
  std::vector<double> psql;
  for (int i = 0; i <= reps && error.empty(); ++i) {
    const double s = PsqlCopySeconds(sources, "wide_" + label, &error);
    if (i > 0) psql.push_back(s);  // the first run warms the caches for both
  }
  std::vector<double> ready;
  int64_t enclave_peak = 0, kernel_peak = 0, bytes = 0, pulled = 0;
  for (int i = 0; i < reps && error.empty(); ++i) {
    const Point p = Once(kernel, api, {"rows_" + label});
    error = p.error;
    ready.push_back(p.ready_s);
    enclave_peak = std::max(enclave_peak, p.enclave_peak_rss);
    kernel_peak = std::max(kernel_peak, p.kernel_rss_peak);
    bytes = p.source_bytes;
    pulled = p.rows;
  }
  if (!error.empty()) {
    out["error"] = error;
    return out;
  }
  const double ready_s = Median(ready), psql_s = Median(psql);
  out["ready_s"] = ready_s;
  out["psql_copy_s"] = psql_s;
  out["ready_vs_psql_copy"] = psql_s > 0 ? ready_s / psql_s : 0;
  out["rows_pulled"] = pulled;
  out["source_bytes"] = bytes;
  out["enclave_peak_rss_bytes"] = enclave_peak;
  out["rss_vs_source_bytes"] = bytes > 0 ? static_cast<double>(enclave_peak) / bytes : 0;
  out["kernel_peak_rss_bytes"] = kernel_peak;
  Log("  growth %s rows: ready %.2f s (psql \\copy %.2f s, %.2fx), enclave %.0f MiB for %.0f MiB "
      "(%.2fx), kernel %.0f MiB",
      label.c_str(), ready_s, psql_s, psql_s > 0 ? ready_s / psql_s : 0,
      static_cast<double>(enclave_peak) / (1 << 20), static_cast<double>(bytes) / (1 << 20),
      bytes > 0 ? static_cast<double>(enclave_peak) / bytes : 0,
      static_cast<double>(kernel_peak) / (1 << 20));
  return out;
}

json SourcesPoint(test::KernelProcess& kernel, Api& api, int count, int reps) {
  std::vector<std::string> datasets;
  for (int k = 1; k <= count; ++k) datasets.push_back("source_" + std::to_string(k));
  json out = {{"sources", count}, {"repetitions", reps}};
  std::vector<double> ready;
  int64_t rows = 0;
  for (int i = 0; i < reps; ++i) {
    const Point p = Once(kernel, api, datasets);
    if (!p.error.empty()) {
      out["error"] = p.error;
      return out;
    }
    ready.push_back(p.ready_s);
    rows = p.rows;
  }
  out["ready_s"] = Median(ready);
  out["rows_pulled"] = rows;
  Log("  growth %d sources: ready %.2f s", count, out["ready_s"].get<double>());
  return out;
}

}  // namespace

json RunGrowth(Sources& sources, const std::string& dir, bool small) {
  const std::vector<int64_t> sizes =
      small ? std::vector<int64_t>{10'000, 100'000}
            : std::vector<int64_t>{10'000, 100'000, 1'000'000, 10'000'000};
  const int64_t source_rows = small ? 10'000 : 100'000;
  json out = {{"row_sizes", sizes},
              {"rows_per_source", source_rows},
              {"enclave_memory_bytes", kEnclaveMemoryBytes},
              {"targets",
               {{"ready_vs_psql_copy_at_largest", 1.0}, {"rss_vs_source_bytes_at_largest", 1.2}}}};

  const auto tl = Clock::now();
  std::vector<std::pair<std::string, std::string>> datasets;
  for (int64_t rows : sizes) {
    Log("  growth: loading %s rows into PostgreSQL", Label(rows).c_str());
    sources.LoadWide("wide_" + Label(rows), rows);
    datasets.emplace_back("rows_" + Label(rows), "wide_" + Label(rows));
  }
  const std::string source_table = "wide_" + Label(source_rows);
  sources.LoadWide(source_table, source_rows);
  for (int k = 1; k <= kMaxSources; ++k) {
    const std::string table = "source_" + std::to_string(k);
    sources.pg().Exec("DROP TABLE IF EXISTS " + table + "; CREATE TABLE " + table + " (LIKE " +
                      source_table + " INCLUDING ALL); INSERT INTO " + table + " SELECT * FROM " +
                      source_table + "; GRANT SELECT ON " + table + " TO reader; ANALYZE " + table);
    datasets.emplace_back(table, table);
  }
  out["load_sources_s"] = MsSince(tl) / 1000.0;

  const test::TestPki pki = test::GenerateTestPki(dir);
  std::filesystem::create_directories(dir + "/kernel");
  test::KernelProcess kernel(dir + "/kernel",
                             PostgresOnlyKernelConfig(sources, datasets, dir + "/kernel", pki,
                                                      KernelOptions{}, kEnclaveMemoryBytes));
  if (!kernel.Start()) {
    Log("growth kernel did not start:\n%s", kernel.log().c_str());
    return {{"error", "kernel did not start"}};
  }
  Api api(kernel.port());
  const int64_t kernel_rss_at_start = ProcessMemory(kernel.pid(), "VmRSS");

  json by_rows = json::array();
  for (int64_t rows : sizes) {
    by_rows.push_back(RowsPoint(sources, kernel, api, rows, rows >= 10'000'000 ? 1 : 3));
  }
  out["by_rows"] = by_rows;
  json by_sources = json::array();
  for (int count : {1, 2, 4, kMaxSources})
    by_sources.push_back(SourcesPoint(kernel, api, count, 3));
  out["by_sources"] = by_sources;

  int64_t kernel_peak = 0;
  for (const json& p : by_rows)
    kernel_peak = std::max(kernel_peak, p.value("kernel_peak_rss_bytes", int64_t{0}));
  out["kernel_rss"] = {{"at_start_bytes", kernel_rss_at_start},
                       {"peak_bytes", kernel_peak},
                       {"at_end_bytes", ProcessMemory(kernel.pid(), "VmRSS")}};
  kernel.Stop();
  return out;
}

}  // namespace airlock::bench
