// 1M rows from PostgreSQL into a sealed enclave, against psql.
//
// Ours: the enclave runtime (ServeEnclave) on one end of a socketpair, the
// kernel's EnclaveClient on the other; the spec names the postgres connector,
// which the runtime loads through the plugin host and pulls into in-memory
// SQLite. Timed from SendSpec to the "sealed" state (everything a real
// enclave does before it can be queried).
// Baseline: `psql -c "\copy (SELECT ...) TO '/dev/null'"` of the same rows,
// same role, same TCP loopback, no TLS on either side.
//
//   postgres_ingest_bench [--rows N] [--runs R] [--batch-rows B]
//
// Prints each run and the median times; ratio = psql seconds / our seconds
// (1.0: as fast as psql; the target is >= 0.8).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/batch.hpp"
#include "kernel/enclave/enclave_client.h"
#include "kernel/enclave/enclave_host.h"
#include "kernel/enclave/enclave_runtime.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/postgres/subprocess.h"

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr char kPassword[] = "bench-Pw-5c1f";
constexpr char kPasswordEnv[] = "AIRLOCK_BENCH_PG_PASSWORD";
constexpr char kSelect[] = "SELECT id, label, value, ts FROM bench_rows";

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double RunPsql(const airlock::test::PgCluster& pg) {
  const auto start = Clock::now();
  auto result = airlock::test::pg_internal::RunProcess(
      {"psql", "-X", "-q", "-h", "127.0.0.1", "-p", std::to_string(pg.port()), "-U", "bench", "-d",
       "postgres", "-c", std::string("\\copy (") + kSelect + ") TO '/dev/null'"},
      {std::string("PGPASSWORD=") + kPassword, "PGSSLMODE=disable"});
  const double s = Seconds(start);
  if (result.exit_code != 0) throw std::runtime_error("psql failed: " + result.err);
  return s;
}

// Waits for a "sealed" or "failed" state.
class Outcome {
 public:
  void Set(const Json& state) {
    const std::string s = state.value("state", "");
    if (s != "sealed" && s != "failed") return;
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = state;
    cv_.notify_all();
  }
  Json Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, std::chrono::minutes(10), [&] { return !state_.is_null(); });
    return state_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  Json state_;
};

Json ConnectorConfig(const airlock::test::PgCluster& pg, int64_t batch_rows) {
  return {{"host", "127.0.0.1"},
          {"port", pg.port()},
          {"database", "postgres"},
          {"user", "bench"},
          {"password", std::string("env:") + kPasswordEnv},
          {"sslmode", "disable"},
          {"batch_rows", batch_rows},
          {"datasets", {{{"name", "bench_rows"}, {"table", "public.bench_rows"}}}}};
}

// Counts rows and drops every batch at once.
class NullConsumer : public airlock::sdk::BatchConsumer {
 public:
  airlock::Status OnSchema(airlock::arrow::OwnedSchema) override { return airlock::Status::Ok(); }
  airlock::Status OnBatch(airlock::arrow::OwnedArray batch) override {
    rows += batch->length;
    return airlock::Status::Ok();
  }
  int64_t rows = 0;
};

// The connector alone: the same plugin through the plugin host, batches
// dropped (what the pull costs without the enclave's SQLite ingestion).
double RunConnectorOnly(const airlock::test::PgCluster& pg, int64_t rows, int64_t batch_rows) {
  // A plugin library binds to the first host that enters it (here the
  // enclave runtime's table), so this pull is routed the way an enclave
  // routes its own: through EnclaveHostServices() to a per-pull EnclaveHost.
  static airlock::plugin_host::PluginLoader loader(airlock::enclave::EnclaveHostServices());
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error("socketpair failed");
  }
  airlock::enclave::UniqueFd peer(fds[1]);
  airlock::enclave::FrameChannel channel(fds[0]);  // carries audit events; none are sent
  airlock::enclave::EnclaveHost host([](int32_t, std::string_view, std::string_view) {}, channel);
  airlock::enclave::ScopedEnclaveHost routed(host);
  auto library = loader.Load(AIRLOCK_POSTGRES_CONNECTOR, std::nullopt, AIRLOCK_KIND_CONNECTOR);
  if (!library.ok()) throw std::runtime_error(library.status().ToString());
  auto connector =
      airlock::plugin_host::ConnectorPlugin::Create(*library, ConnectorConfig(pg, batch_rows));
  if (!connector.ok()) throw std::runtime_error(connector.status().ToString());
  airlock::PullSpec spec;
  spec.dataset = "bench_rows";
  NullConsumer consumer;
  const auto start = Clock::now();
  const airlock::Status pulled = (*connector)->Pull(spec, consumer);
  const double s = Seconds(start);
  if (!pulled.ok() || consumer.rows != rows) {
    throw std::runtime_error("connector pull failed: " + pulled.ToString());
  }
  return s;
}

double RunEnclave(const airlock::test::PgCluster& pg, int64_t rows, int64_t batch_rows) {
  using namespace airlock::enclave;  // NOLINT
  using airlock::Result;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error("socketpair failed");
  }
  EnclaveEnvironment env;
  env.log = [](int32_t level, std::string_view source, std::string_view message) {
    if (level >= AIRLOCK_LOG_WARN) {
      std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(source.size()), source.data(),
                   static_cast<int>(message.size()), message.data());
    }
  };
  std::thread enclave([fd = fds[0], env] {
    const airlock::Status served = ServeEnclave(fd, env);
    if (!served.ok()) std::fprintf(stderr, "enclave: %s\n", served.ToString().c_str());
  });
  Outcome outcome;
  EnclaveEvents events;
  events.on_state = [&outcome](const Json& state) { outcome.Set(state); };
  auto client = EnclaveClient::Start(fds[1], events);
  // On every path: end the channel (the enclave then returns) and join.
  struct Stop {
    std::thread& thread;
    Result<std::unique_ptr<EnclaveClient>>& client;
    int kernel_fd;
    ~Stop() {
      if (client.ok()) {
        (*client)->Close();
      } else {
        ::shutdown(kernel_fd, SHUT_RDWR);
      }
      thread.join();
    }
  } stop{enclave, client, fds[1]};
  if (!client.ok()) throw std::runtime_error(client.status().ToString());

  const Json config = ConnectorConfig(pg, batch_rows);
  const Json spec = {
      {"request_id", "bench"},
      {"mode", "interactive"},
      {"datasets",
       {{{"name", "bench_rows"},
         {"connector", {{"name", "pg"}, {"path", AIRLOCK_POSTGRES_CONNECTOR}, {"config", config}}},
         {"pull", {{"dataset", "bench_rows"}, {"object", "public.bench_rows"}}}}}},
      {"limits", {{"max_memory_bytes", int64_t{4} << 30}}}};
  const auto start = Clock::now();
  if (auto sent = (*client)->SendSpec(spec); !sent.ok()) throw std::runtime_error(sent.ToString());
  const Json state = outcome.Wait();
  const double s = Seconds(start);
  if (state.value("state", "") != "sealed" || state["tables"][0]["rows"].get<int64_t>() != rows) {
    throw std::runtime_error("enclave did not seal every row: " + state.dump());
  }
  return s;
}

int64_t Flag(int argc, char** argv, const char* name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int Main(int argc, char** argv) {
  const int64_t rows = Flag(argc, argv, "--rows", 1000000);
  const int64_t runs = Flag(argc, argv, "--runs", 3);
  const int64_t batch_rows = Flag(argc, argv, "--batch-rows", 10000);
  ::setenv(kPasswordEnv, kPassword, 1);

  auto pg = airlock::test::PgCluster::Start();
  pg->Exec(std::string("CREATE ROLE bench LOGIN PASSWORD '") + kPassword +
           "';"
           "CREATE TABLE bench_rows (id int8, label text, value float8, ts timestamptz);"
           "INSERT INTO bench_rows SELECT g, 'label-' || g, g * 0.25,"
           " timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'"
           " FROM generate_series(1, " +
           std::to_string(rows) +
           ") g;"
           "GRANT SELECT ON bench_rows TO bench;");
  pg->Exec("VACUUM ANALYZE bench_rows");  // not inside the implicit transaction above
  std::printf("rows=%lld columns=(int8, text, float8, timestamptz) batch_rows=%lld\n",
              static_cast<long long>(rows), static_cast<long long>(batch_rows));
  // One untimed round of each warms the buffer cache and the page cache.
  RunPsql(*pg);
  RunEnclave(*pg, rows, batch_rows);
  std::vector<double> psql, ours, alone;
  for (int64_t i = 0; i < runs; ++i) {
    psql.push_back(RunPsql(*pg));
    ours.push_back(RunEnclave(*pg, rows, batch_rows));
    alone.push_back(RunConnectorOnly(*pg, rows, batch_rows));
    std::printf(
        "run %lld: psql \\copy %.3f s, enclave pull to sealed %.3f s, connector alone %.3f s\n",
        static_cast<long long>(i + 1), psql.back(), ours.back(), alone.back());
  }
  const double p = Median(psql), o = Median(ours), a = Median(alone);
  const double n = static_cast<double>(rows);
  std::printf(
      "median: psql %.3f s (%.0f rows/s), enclave %.3f s (%.0f rows/s), "
      "connector alone %.3f s (%.0f rows/s)\n",
      p, n / p, o, n / o, a, n / a);
  std::printf("ratio enclave/psql %.2f, connector alone/psql %.2f\n", p / o, p / a);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {  // unwinds first: the cluster is stopped and wiped
    std::fprintf(stderr, "postgres_ingest_bench: %s\n", e.what());
    return 1;
  }
}
