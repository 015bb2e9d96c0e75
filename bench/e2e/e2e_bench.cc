// End-to-end benchmarks, one program: request lifecycle, load sweep through
// both tunnels, cross-source join against sqlite3 and PostgreSQL (answers
// compared row for row), growth to 10M rows and 8 sources against psql,
// decisions over HTTP against in process, the control plane against nginx,
// and enclave memory. Starts everything it needs on loopback and writes one
// JSON document (bench/run.sh renders it and draws the growth curves).
//
//   e2e_bench --out results.json [--small]
//             [--suites lifecycle,load,join,growth,decisions,control]
//
// Every figure with a natural baseline carries that baseline, measured in the
// same run, and the ratio.
#include <sys/utsname.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <libpq-fe.h>

#include <nlohmann/json.hpp>

#include "bench/e2e/control_plane.h"
#include "bench/e2e/decisions.h"
#include "bench/e2e/fixture.h"
#include "bench/e2e/growth.h"
#include "bench/e2e/join_check.h"
#include "bench/e2e/load.h"
#include "bench/e2e/stats.h"
#include "tests/support/postgres/subprocess.h"
#include "tests/support/temp_dir.h"

namespace airlock::bench {
namespace {

using nlohmann::json;

struct Options {
  bool small = false;
  std::string out = "e2e-results.json";
  // Timed join runs per engine after a warm-up; 0: 20, or 3 with --small.
  // The enclave's query workers each warm their own page cache, so a few
  // runs mostly meet cold ones.
  int join_runs = 0;
  std::set<std::string> suites = {"lifecycle", "load", "join", "growth", "decisions", "control"};
};

json ToJson(const Summary& s) {
  return {{"n", s.n},        {"mean_ms", s.mean}, {"p50_ms", s.p50}, {"p95_ms", s.p95},
          {"p99_ms", s.p99}, {"min_ms", s.min},   {"max_ms", s.max}};
}

std::string ReadFirstLine(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      std::string v = colon == std::string::npos ? line : line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

json Machine() {
  utsname u{};
  ::uname(&u);
  const std::string mem = ReadFirstLine("/proc/meminfo", "MemTotal");
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  return {{"cpu", ReadFirstLine("/proc/cpuinfo", "model name")},
          {"cores", std::thread::hardware_concurrency()},
          {"memory_bytes", std::atoll(mem.c_str()) * 1024},
          {"kernel", std::string(u.sysname) + " " + u.release},
          {"load_average_at_start", load[0]}};
}

// --- a ready request -------------------------------------------------------

struct Ready {
  std::unique_ptr<test::KernelProcess> kernel;
  std::unique_ptr<Api> api;
  Grant grant;
  double approve_to_ready_s = 0;
};

bool MakeReady(Sources& sources, const Scale& scale, const std::string& dir,
               const test::TestPki& pki, const KernelOptions& o, Ready* out) {
  std::filesystem::create_directories(dir);
  out->kernel =
      std::make_unique<test::KernelProcess>(dir, KernelConfig(sources, scale, dir, pki, o));
  if (!out->kernel->Start()) {
    Log("kernel did not start:\n%s", out->kernel->log().c_str());
    return false;
  }
  out->api = std::make_unique<Api>(out->kernel->port());
  std::string error;
  const std::string id = out->api->Create(&error);
  const auto t0 = Clock::now();
  if (id.empty() || !out->api->Approve(id, &error) || !out->api->WaitReady(id, 600, 5, &error) ||
      !out->api->Credentials(id, &out->grant, &error)) {
    Log("request did not become ready: %s\n%s", error.c_str(), out->kernel->log().c_str());
    return false;
  }
  out->approve_to_ready_s = MsSince(t0) / 1000.0;
  return true;
}

// --- 1. request lifecycle --------------------------------------------------

json RunLifecycle(Sources& sources, const std::string& dir, int reps) {
  const Scale scale{10'000, 10'000, 10'000, "10k"};
  sources.Load(scale);
  const test::TestPki pki = test::GenerateTestPki(dir);
  KernelOptions o;
  test::KernelProcess kernel(dir, KernelConfig(sources, scale, dir, pki, o));
  if (!kernel.Start()) {
    Log("lifecycle kernel did not start:\n%s", kernel.log().c_str());
    return {{"error", "kernel did not start"}};
  }
  Api api(kernel.port());
  const std::vector<std::string> phases = {"create",      "decision", "approve",
                                           "provision",   "ingest",   "seal",
                                           "first_query", "total",    "query_set"};
  std::map<std::string, std::vector<double>> samples;
  int failures = 0;
  std::string first_error;
  const std::vector<std::string> queries = QuerySet();
  for (int rep = 0; rep < reps; ++rep) {
    std::string error;
    const double start_epoch = NowEpochSeconds();
    const auto t0 = Clock::now();
    const std::string id = api.Create(&error);
    const double create_ms = MsSince(t0);
    const auto t1 = Clock::now();
    bool ok = !id.empty() && api.Approve(id, &error);
    const double approve_ms = MsSince(t1);
    // The user polls until ready, collects the credential and retries the
    // first query until it answers.
    Grant grant;
    ok = ok && api.WaitReady(id, 120, 2, &error) && api.Credentials(id, &grant, &error);
    double first_ok_epoch = 0;
    double query_set_ms = 0;
    if (ok) {
      TunnelClient tunnel(grant, "https", pki.ca.cert_file);
      int64_t rows = 0;
      ok = false;
      for (int attempt = 0; attempt < 100 && !ok; ++attempt) {
        ok = tunnel.Query(queries.back(), &rows, nullptr, &error);
      }
      first_ok_epoch = NowEpochSeconds();
      const auto tq = Clock::now();
      for (const auto& q : queries) ok = ok && tunnel.Query(q, &rows, nullptr, &error);
      query_set_ms = MsSince(tq);
    }
    if (!ok) {
      ++failures;
      if (first_error.empty()) first_error = error;
      Log("lifecycle rep %d failed: %s", rep, error.c_str());
      if (!id.empty()) api.Revoke(id);
      continue;
    }
    std::map<std::string, double> ts;
    double last_pull = 0;
    const json audit = api.Audit(id);
    if (const char* dump = std::getenv("AIRLOCK_BENCH_AUDIT_DUMP"); dump != nullptr) {
      // One line per repetition: the request's audit records, for phase analysis.
      if (FILE* f = std::fopen(dump, "a"); f != nullptr) {
        std::fprintf(f, "%s\n", audit.dump().c_str());
        std::fclose(f);
      }
    }
    for (const json& rec : audit.value("records", json::array())) {
      const std::string ev = rec.value("event", "");
      const double t = ParseAuditTs(rec.value("ts", ""));
      if (ev == "enclave.pull_done") last_pull = std::max(last_pull, t);
      if (!ts.count(ev)) ts[ev] = t;
    }
    auto gap = [&](const std::string& a, double b) {
      return ts.count(a) && b > 0 ? (b - ts[a]) * 1000.0 : -1.0;
    };
    samples["create"].push_back(create_ms);
    samples["decision"].push_back(gap("request.submitted", ts["request.evaluated"]));
    samples["approve"].push_back(approve_ms);
    samples["provision"].push_back(gap("request.approved", ts["enclave.provisioned"]));
    samples["ingest"].push_back(gap("enclave.provisioned", last_pull));
    samples["seal"].push_back(last_pull > 0 ? (ts["request.ready"] - last_pull) * 1000.0 : -1);
    samples["first_query"].push_back(gap("request.ready", first_ok_epoch));
    samples["total"].push_back((first_ok_epoch - start_epoch) * 1000.0);
    samples["query_set"].push_back(query_set_ms);
    api.Revoke(id);
    if (rep % 10 == 0) {
      Log("  lifecycle rep %d: total %.1f ms", rep, samples["total"].back());
    }
  }
  json out = {{"repetitions", reps}, {"rows_per_source", 10'000}, {"isolator", "process"},
              {"tunnel", "https"},   {"failures", failures},      {"target_total_p50_ms", 150}};
  if (!first_error.empty()) out["first_error"] = first_error;
  json ph = json::object();
  for (const auto& p : phases) ph[p] = ToJson(Summarize(samples[p]));
  out["phases"] = ph;
  kernel.Stop();
  return out;
}

// --- 2. load sweep ---------------------------------------------------------

json ToJson(const LoadLevel& l) {
  json j = {{"users", l.users},          {"successes", l.successes},
            {"failures", l.failures},    {"connect_failures", l.connect_failures},
            {"avg_ms", l.avg_ms},        {"p50_ms", l.p50_ms},
            {"p95_ms", l.p95_ms},        {"p99_ms", l.p99_ms},
            {"max_ms", l.max_ms},        {"queries_per_s", l.qps},
            {"error_rate", l.error_rate}};
  if (!l.first_error.empty()) j["first_error"] = l.first_error;
  return j;
}

json RunLoadSweep(Sources& sources, const std::string& dir, const std::vector<int>& levels,
                  double seconds, json* memory) {
  const Scale scale{10'000, 10'000, 10'000, "10k"};
  sources.Load(scale);
  const test::TestPki pki = test::GenerateTestPki(dir);
  json out = {{"levels", levels},
              {"seconds_per_level", seconds},
              {"rows_per_source", 10'000},
              {"queries", QuerySet()}};
  for (const std::string transport : {"https", "pgwire"}) {
    KernelOptions o;
    o.tunnel = transport;
    Ready ready;
    if (!MakeReady(sources, scale, dir + "/" + transport, pki, o, &ready)) {
      out[transport] = {{"error", "request did not become ready"}};
      continue;
    }
    if (transport == "https") {
      (*memory)["rows_10k_x3"] = {
          {"rows", 30'000},
          {"peak_rss_bytes", EnclavePeakRss(ready.kernel->pid())},
          {"progress", ready.api->Get(ready.grant.id)["enclave"]["progress"]}};
    }
    json rows = json::array();
    for (int users : levels) {
      const LoadLevel l =
          RunLoad(ready.grant, transport, pki.ca.cert_file, users, seconds, QuerySet());
      Log("  load %s users=%d: %.0f q/s p50 %.1f ms p99 %.1f ms failures %lld %s",
          transport.c_str(), users, l.qps, l.p50_ms, l.p99_ms, static_cast<long long>(l.failures),
          l.first_error.substr(0, 120).c_str());
      rows.push_back(ToJson(l));
    }
    out[transport] = rows;
    ready.kernel->Stop();
  }
  return out;
}

// --- 3. cross-source join scaling (and memory) ------------------------------

// Median of sqlite3-shell "Run Time: real" over `runs` (after one warm-up),
// the database deserialized into memory as the enclave keeps it.
double SqliteShellJoinMs(const std::string& db, int runs, std::string* first_row,
                         std::string* error) {
  const std::string script = db + ".bench.sql";
  {
    std::ofstream s(script);
    s << ".open --deserialize " << db << "\n.timer on\n";
    for (int i = 0; i <= runs; ++i) s << JoinSql() << ";\n";
  }
  auto r = test::pg_internal::RunProcess({"sqlite3", ":memory:", ".read " + script});
  if (r.exit_code != 0) {
    *error = "sqlite3: " + r.err.substr(0, 300);
    return 0;
  }
  std::vector<double> times;
  std::istringstream in(r.out);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    double real = 0;
    if (std::sscanf(line.c_str(), "Run Time: real %lf", &real) == 1) {
      times.push_back(real * 1000.0);
    } else if (first && !line.empty()) {
      *first_row = line;
      first = false;
    }
  }
  if (times.size() < 2) {
    *error = "sqlite3 printed no timings";
    return 0;
  }
  times.erase(times.begin());
  return Summarize(times).p50;
}

PGconn* ConnectBaseline(test::PgCluster& pg, std::string* error) {
  const std::string conninfo = "host=" + pg.socket_dir() + " port=" + std::to_string(pg.port()) +
                               " user=postgres dbname=baseline";
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    *error = PQerrorMessage(c);
    PQfinish(c);
    return nullptr;
  }
  return c;
}

// Median time of `sql` in PostgreSQL with all three tables local, over `runs`
// after a warm-up; *rows gets the warm-up's answer, normalized.
double PostgresLocalMs(test::PgCluster& pg, const std::string& sql, int runs, json* rows,
                       std::string* error) {
  PGconn* c = ConnectBaseline(pg, error);
  if (c == nullptr) return 0;
  std::vector<double> times;
  for (int i = 0; i <= runs; ++i) {
    const auto t0 = Clock::now();
    PGresult* r = PQexec(c, sql.c_str());
    const double ms = MsSince(t0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      *error = PQresultErrorMessage(r);
      PQclear(r);
      PQfinish(c);
      return 0;
    }
    if (i == 0) *rows = NormalizedRows(r);
    PQclear(r);
    if (i > 0) times.push_back(ms);
  }
  PQfinish(c);
  return Summarize(times).p50;
}

// Whether a tunnel's answers to both joins match PostgreSQL's row for row;
// the first difference is kept in the results.
void CompareWithPostgres(const json& expected, const json& actual, const std::string& what,
                         json* out) {
  std::string difference;
  const bool same = SameRows(expected, actual, &difference);
  (*out)["rows_match_postgres"] = (*out).value("rows_match_postgres", true) && same;
  if (!same) (*out)["row_difference"] = what + ": " + difference;
}

json RunJoin(Sources& sources, const std::string& dir, const Scale& scale, int runs, json* memory) {
  const auto tl = Clock::now();
  sources.Load(scale);
  const double load_sources_s = MsSince(tl) / 1000.0;
  const test::TestPki pki = test::GenerateTestPki(dir);
  json out = {{"rows",
               {{"postgres_customers", scale.customers},
                {"mongodb_orders", scale.orders},
                {"csv_regions", scale.regions}}},
              {"runs", runs},
              {"sql", JoinSql()},
              {"load_sources_s", load_sources_s},
              {"target_ratio_vs_sqlite3", 1.15}};

  // Baselines: the sqlite3 shell over the same rows (in memory, like the
  // enclave), and PostgreSQL with all three tables loaded locally.
  std::string error, row;
  const std::string db = dir + "/baseline.sqlite";
  std::filesystem::remove(db);
  {
    std::ofstream(dir + "/baseline.sql") << BaselineSql(scale, false);
    const auto t0 = Clock::now();
    auto r = test::pg_internal::RunProcess({"sqlite3", db, ".read " + dir + "/baseline.sql"});
    out["sqlite3_build_s"] = MsSince(t0) / 1000.0;
    if (r.exit_code != 0) Log("sqlite3 build failed: %s", r.err.c_str());
  }
  const double sqlite_ms = SqliteShellJoinMs(db, runs, &row, &error);
  out["sqlite3_shell"] = {
      {"join_ms", sqlite_ms},
      {"first_row", row},
      {"db_bytes", std::filesystem::exists(db) ? std::filesystem::file_size(db) : 0}};
  if (!error.empty()) out["sqlite3_shell"]["error"] = error;
  Log("  join sqlite3 shell: %.1f ms (%s)", sqlite_ms, row.c_str());
  error.clear();
  sources.pg().Exec("DROP DATABASE IF EXISTS baseline");
  sources.pg().Exec("CREATE DATABASE baseline");
  const auto tp = Clock::now();
  sources.pg().Exec(BaselineSql(scale, true), "baseline");
  const double pg_load_s = MsSince(tp) / 1000.0;
  json pg_rows, pg_full_rows;
  const double pg_ms = PostgresLocalMs(sources.pg(), JoinSql(), runs, &pg_rows, &error);
  (void)PostgresLocalMs(sources.pg(), FullJoinSql(), 0, &pg_full_rows, &error);
  out["postgres_local"] = {{"join_ms", pg_ms},
                           {"first_row", pg_rows.empty() ? "" : pg_rows[0].dump()},
                           {"full_join_rows", pg_full_rows.size()},
                           {"load_s", pg_load_s}};
  out["full_sql"] = FullJoinSql();
  if (!error.empty()) out["postgres_local"]["error"] = error;
  Log("  join postgres local: %.1f ms (%s)", pg_ms, pg_rows.dump().substr(0, 120).c_str());

  for (const std::string transport : {"https", "pgwire"}) {
    KernelOptions o;
    o.tunnel = transport;
    Ready ready;
    if (!MakeReady(sources, scale, dir + "/" + transport, pki, o, &ready)) {
      out[transport] = {{"error", "request did not become ready"}};
      continue;
    }
    json t = {{"approve_to_ready_s", ready.approve_to_ready_s}};
    if (transport == "https") {
      const json progress = ready.api->Get(ready.grant.id)["enclave"]["progress"];
      int64_t bytes = 0, rows = 0;
      for (const auto& [name, p] : progress.items()) {
        bytes += p.value("bytes", int64_t{0});
        rows += p.value("rows", int64_t{0});
      }
      const int64_t rss = EnclavePeakRss(ready.kernel->pid());
      (*memory)["rows_1m_scale"] = {
          {"rows", rows},
          {"source_bytes", bytes},
          {"sqlite3_db_bytes", out["sqlite3_shell"]["db_bytes"]},
          {"peak_rss_bytes", rss},
          {"peak_rss_per_million_rows_bytes", rows > 0 ? rss * 1e6 / static_cast<double>(rows) : 0},
          {"rss_vs_source_bytes",
           bytes > 0 ? static_cast<double>(rss) / static_cast<double>(bytes) : 0},
          {"progress", progress}};
    }
    TunnelClient tunnel(ready.grant, transport, pki.ca.cert_file);
    std::vector<double> times;
    json answer, full_answer;
    for (int i = 0; i <= runs; ++i) {
      int64_t rows = 0;
      const auto t0 = Clock::now();
      if (!tunnel.Query(JoinSql(), &rows, i == 0 ? &answer : nullptr, &error)) {
        t["error"] = error;
        break;
      }
      if (i > 0) times.push_back(MsSince(t0));
    }
    int64_t full_rows = 0;
    if (!tunnel.Query(FullJoinSql(), &full_rows, &full_answer, &error)) t["error"] = error;
    CompareWithPostgres(pg_rows, answer, "join", &t);
    CompareWithPostgres(pg_full_rows, full_answer, "full join", &t);
    const Summary s = Summarize(times);
    t["join"] = ToJson(s);
    t["first_row"] = answer.empty() ? "" : answer[0].dump();
    t["full_join_rows"] = full_rows;
    t["ratio_vs_sqlite3"] = sqlite_ms > 0 ? s.p50 / sqlite_ms : 0;
    t["ratio_vs_postgres_local"] = pg_ms > 0 ? s.p50 / pg_ms : 0;
    Log("  join %s: ready in %.2f s, join p50 %.1f ms (%.2fx sqlite3, %.2fx postgres), rows %s",
        transport.c_str(), ready.approve_to_ready_s, s.p50, sqlite_ms > 0 ? s.p50 / sqlite_ms : 0,
        pg_ms > 0 ? s.p50 / pg_ms : 0,
        t.value("rows_match_postgres", false) ? "match postgres" : "DIFFER from postgres");
    out[transport] = t;
    ready.kernel->Stop();
  }
  return out;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--small") {
      o.small = true;
    } else if (a == "--join-runs" && i + 1 < argc) {
      o.join_runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--out" && i + 1 < argc) {
      o.out = argv[++i];
    } else if (a == "--suites" && i + 1 < argc) {
      o.suites.clear();
      std::stringstream ss(argv[++i]);
      std::string s;
      while (std::getline(ss, s, ',')) o.suites.insert(s);
    } else {
      std::fprintf(stderr,
                   "usage: e2e_bench [--small] [--out FILE] [--suites a,b,...] [--join-runs N]\n");
      std::exit(2);
    }
  }
  return o;
}

}  // namespace
}  // namespace airlock::bench

int main(int argc, char** argv) {
  using namespace airlock::bench;
  const Options o = Parse(argc, argv);
  const auto t0 = Clock::now();
  airlock::test::TempDir dir("airlock-e2e-bench-");
  json doc = {{"date", ""}, {"scale", o.small ? "small" : "full"}, {"machine", Machine()}};
  {
    const std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    doc["date"] = buf;
  }
  try {
    Sources sources(dir.path() + "/sources");
    json memory = json::object();
    auto suite = [&](const char* name, auto&& fn) {
      if (!o.suites.count(name)) return;
      const auto ts = Clock::now();
      Log("== %s", name);
      std::filesystem::create_directories(dir.path() + "/" + name);
      try {
        doc[name] = fn(dir.path() + "/" + name);
      } catch (const std::exception& e) {
        // One broken suite does not cost the others their figures.
        Log("suite %s: %s", name, e.what());
        doc[name] = {{"error", e.what()}};
      }
      doc[name]["suite_seconds"] = MsSince(ts) / 1000.0;
    };
    suite("lifecycle",
          [&](const std::string& d) { return RunLifecycle(sources, d, o.small ? 10 : 100); });
    suite("load", [&](const std::string& d) {
      const std::vector<int> levels = o.small
                                          ? std::vector<int>{1, 10, 100}
                                          : std::vector<int>{1, 10, 25, 50, 100, 250, 500, 1000};
      return RunLoadSweep(sources, d, levels, o.small ? 2 : 8, &memory);
    });
    suite("join", [&](const std::string& d) {
      const Scale scale = o.small ? Scale{100'000, 10'000, 1'000, "join_small"}
                                  : Scale{1'000'000, 100'000, 10'000, "join_1m"};
      return RunJoin(sources, d, scale, o.join_runs > 0 ? o.join_runs : (o.small ? 3 : 20),
                     &memory);
    });
    suite("growth", [&](const std::string& d) { return RunGrowth(sources, d, o.small); });
    suite("decisions", [&](const std::string&) {
      return RunDecisions(std::string(AIRLOCK_BINARY_DIR) + "/bench", o.small ? 1 : 3,
                          o.small ? 100 : 500);
    });
    suite("control", [&](const std::string& d) {
      const std::vector<int> levels =
          o.small ? std::vector<int>{1, 16, 64} : std::vector<int>{1, 4, 16, 64, 256};
      return RunControlPlane(sources, d, levels, o.small ? 1 : 3);
    });
    if (!memory.empty()) doc["memory"] = memory;
  } catch (const std::exception& e) {
    Log("e2e_bench: %s", e.what());
    doc["error"] = e.what();
  }
  doc["duration_s"] = MsSince(t0) / 1000.0;
  std::ofstream(o.out) << doc.dump(2) << "\n";
  Log("wrote %s (%.0f s)", o.out.c_str(), doc["duration_s"].get<double>());
  return doc.contains("error") ? 1 : 0;
}
