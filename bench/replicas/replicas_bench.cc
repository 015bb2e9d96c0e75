// Kernel replicas on a real PostgreSQL against one kernel on SQLite, in one
// run on one machine, as ratios:
//  * POST /v1/requests (each left pending approval: an audit group and a
//    state save) and GET /v1/requests/{id}, with 1 and 2 replicas on
//    PostgreSQL against the single SQLite node, the same client threads
//    spread over the replicas;
//  * failover: the owner of a ready request killed (SIGKILL) N times; the
//    time from the kill to the first query that succeeds with the
//    requester's credential at the URL the survivor shows.
//
//   replicas_bench [--seconds S] [--clients C] [--kills N] [--out FILE]
//
// Starts everything it needs (PostgreSQL, the kernels); runs the built
// airlockd and plugins of the build it belongs to.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/e2e/stats.h"
#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e_postgres/pg_kernel_support.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::bench {
namespace {

using nlohmann::json;
using test::HttpClient;
using test::KernelProcess;
using Clock = std::chrono::steady_clock;

struct Options {
  double seconds = 10;
  int clients = 16;
  int kills = 20;
  std::string out;
};

struct Deployment {
  std::vector<std::unique_ptr<test::TempDir>> dirs;
  std::vector<test::TestPki> pkis;
  std::vector<std::unique_ptr<KernelProcess>> kernels;
};

// `replicas` kernels on database `database`, or one on SQLite when 0.
Deployment Deploy(test::PgCluster& pg, const std::string& database, int replicas,
                  int64_t heartbeat_ms, int64_t lease_ttl_ms) {
  Deployment d;
  const int count = replicas == 0 ? 1 : replicas;
  for (int i = 0; i < count; ++i) {
    d.dirs.push_back(std::make_unique<test::TempDir>("airlock-bench-replicas-"));
    const std::string& dir = d.dirs.back()->path();
    d.pkis.push_back(test::GenerateTestPki(dir));
    json config = test::PgKernelConfig(dir, d.pkis.back(), pg);
    if (replicas == 0) {
      config["state"] = {{"backend", "sqlite"}};
    } else {
      test::WriteDsn(dir, pg, database);
      config["state"]["heartbeat_interval_ms"] = heartbeat_ms;
      config["state"]["lease_ttl_ms"] = lease_ttl_ms;
    }
    config["access"]["admin_groups"] = {"owners"};
    d.kernels.push_back(std::make_unique<KernelProcess>(dir, config));
  }
  if (replicas > 0) {
    std::string out;
    if (test::RunAirlockd({"state", "migrate", "--config", d.kernels[0]->config_path()}, &out) !=
        0) {
      std::cerr << "migrate failed: " << out << "\n";
      std::exit(1);
    }
  }
  for (auto& kernel : d.kernels) {
    if (!kernel->Start()) {
      std::cerr << "kernel did not start:\n" << kernel->log() << "\n";
      std::exit(1);
    }
  }
  return d;
}

struct Rate {
  double per_second = 0;
  int64_t ok = 0;
  int64_t errors = 0;
};

// `clients` threads, each on one kernel (round-robin), for `seconds`.
template <class Call>
Rate Drive(const Deployment& d, const Options& o, Call call) {
  std::atomic<bool> running{true};
  std::atomic<int64_t> ok{0}, errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client("127.0.0.1", d.kernels[c % d.kernels.size()]->port());
      std::mt19937 random(static_cast<unsigned>(c));
      while (running.load(std::memory_order_relaxed)) {
        (call(client, random) ? ok : errors)++;
      }
    });
  }
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  running = false;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return {static_cast<double>(ok.load()) / elapsed, ok.load(), errors.load()};
}

json ControlPlane(test::PgCluster& pg, int replicas, const Options& o) {
  const std::string database = "bench_replicas_" + std::to_string(replicas);
  if (replicas > 0) pg.Exec("CREATE DATABASE " + database + " OWNER airlock_kernel");
  Deployment d = Deploy(pg, database, replicas, 1000, 3000);
  const json ask = {{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "bench"}};
  const std::string body = ask.dump();
  std::mutex mu;
  std::vector<std::string> ids;
  const Rate post = Drive(d, o, [&](HttpClient& client, std::mt19937&) {
    auto created = client.Post("/v1/requests", body, test::PgAuth(test::kPgAlice));
    if (created.status != 201) return false;
    std::lock_guard lock(mu);
    if (ids.size() < 100000) ids.push_back(created.json().value("id", ""));
    return true;
  });
  const Rate get = Drive(d, o, [&](HttpClient& client, std::mt19937& random) {
    const std::string& id = ids[random() % ids.size()];
    return client.Get("/v1/requests/" + id, test::PgAuth(test::kPgAlice)).status == 200;
  });
  for (auto& kernel : d.kernels) kernel->Stop();
  const std::string name =
      replicas == 0 ? "sqlite, 1 node" : "postgres, " + std::to_string(replicas) + " replica(s)";
  std::printf("%-24s POST %8.0f/s (%lld errors)   GET %8.0f/s (%lld errors)\n", name.c_str(),
              post.per_second, static_cast<long long>(post.errors), get.per_second,
              static_cast<long long>(get.errors));
  return {
      {"deployment", name},         {"replicas", replicas},        {"post_per_s", post.per_second},
      {"post_errors", post.errors}, {"get_per_s", get.per_second}, {"get_errors", get.errors}};
}

// Polls `kernel` until request `id` is ready under `owner`; its view.
json WaitReady(KernelProcess& kernel, const std::string& id, const std::string& owner,
               std::chrono::seconds timeout) {
  HttpClient client("127.0.0.1", kernel.port());
  const auto deadline = Clock::now() + timeout;
  json view;
  while (Clock::now() < deadline) {
    view = client.Get("/v1/requests/" + id, test::PgAuth(test::kPgAlice)).json();
    if (view.value("state", "") == "ready" &&
        view["enclave"].value("owner", std::string()) == owner) {
      return view;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return view;
}

bool QueryWorks(const std::string& url, const std::string& credential, const std::string& ca) {
  const test::TunnelTarget target = test::ParseTunnelUrl(url);
  if (target.port == 0) return false;
  HttpClient tunnel(target.host, target.port, test::ClientTls{ca, "", ""});
  tunnel.set_timeout(std::chrono::seconds(2));
  return tunnel
             .Post(
                 target.prefix + "/query", json{{"sql", "SELECT COUNT(*) FROM orders"}}.dump(),
                 {{"Authorization", "Bearer " + credential}, {"Content-Type", "application/json"}})
             .status == 200;
}

std::string ReplicaId(KernelProcess& kernel) {
  HttpClient client("127.0.0.1", kernel.port());
  return client.Get("/v1/cluster", test::PgAuth(test::kPgBob)).json().value("replica", "");
}

json Failover(test::PgCluster& pg, const Options& o) {
  constexpr int64_t kHeartbeatMs = 200;
  constexpr int64_t kLeaseTtlMs = 1000;
  pg.Exec("CREATE DATABASE bench_failover OWNER airlock_kernel");
  Deployment d = Deploy(pg, "bench_failover", 2, kHeartbeatMs, kLeaseTtlMs);
  KernelProcess& a = *d.kernels[0];
  KernelProcess& b = *d.kernels[1];
  const std::string id_a = ReplicaId(a);
  const std::string id_b = ReplicaId(b);
  const json ask = {{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "failover"}};
  std::vector<double> seconds;
  int failures = 0;
  for (int k = 0; k < o.kills; ++k) {
    HttpClient on_a("127.0.0.1", a.port());
    const std::string id =
        on_a.Post("/v1/requests", ask.dump(), test::PgAuth(test::kPgAlice)).json().value("id", "");
    on_a.Post("/v1/requests/" + id + "/approve", "{}", test::PgAuth(test::kPgBob));
    WaitReady(a, id, id_a, std::chrono::seconds(30));
    const json grant =
        on_a.Post("/v1/requests/" + id + "/credentials", "", test::PgAuth(test::kPgAlice)).json();
    const std::string credential = grant.value("credential", "");
    const auto killed = Clock::now();
    a.Kill();
    bool served = false;
    while (!served && Clock::now() - killed < std::chrono::seconds(30)) {
      const json view = WaitReady(b, id, id_b, std::chrono::seconds(30));
      served = QueryWorks(view["tunnel"].value("url", ""), credential, d.pkis[1].ca.cert_file);
    }
    if (served) {
      seconds.push_back(std::chrono::duration<double>(Clock::now() - killed).count());
    } else {
      ++failures;
    }
    HttpClient on_b("127.0.0.1", b.port());
    on_b.Post("/v1/requests/" + id + "/revoke", "{}", test::PgAuth(test::kPgAlice));
    if (!a.Start()) {
      std::cerr << "replica A did not start again:\n" << a.log() << "\n";
      std::exit(1);
    }
  }
  for (auto& kernel : d.kernels) kernel->Stop();
  const Summary s = Summarize(seconds);
  std::printf(
      "failover (%d kills, heartbeat %lld ms, lease %lld ms): p50 %.2f s  p99 %.2f s  "
      "max %.2f s  (%d not served)\n",
      o.kills, static_cast<long long>(kHeartbeatMs), static_cast<long long>(kLeaseTtlMs), s.p50,
      s.p99, s.max, failures);
  return {{"kills", o.kills},
          {"heartbeat_interval_ms", kHeartbeatMs},
          {"lease_ttl_ms", kLeaseTtlMs},
          {"p50_s", s.p50},
          {"p99_s", s.p99},
          {"max_s", s.max},
          {"mean_s", s.mean},
          {"not_served", failures},
          {"samples_s", seconds}};
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--seconds" && has_value) {
      o.seconds = std::stod(argv[++i]);
    } else if (arg == "--clients" && has_value) {
      o.clients = std::stoi(argv[++i]);
    } else if (arg == "--kills" && has_value) {
      o.kills = std::stoi(argv[++i]);
    } else if (arg == "--out" && has_value) {
      o.out = argv[++i];
    } else {
      std::cerr << "usage: replicas_bench [--seconds S] [--clients C] [--kills N] [--out FILE]\n";
      return 2;
    }
  }
  test::PgCluster& pg = test::PgCluster::Shared();
  test::CreateKernelRole(pg);
  json control = json::array();
  for (int replicas : {0, 1, 2}) control.push_back(ControlPlane(pg, replicas, o));
  const double base_post = control[0].value("post_per_s", 0.0);
  const double base_get = control[0].value("get_per_s", 0.0);
  for (json& row : control) {
    row["post_ratio_to_sqlite"] = base_post > 0 ? row.value("post_per_s", 0.0) / base_post : 0;
    row["get_ratio_to_sqlite"] = base_get > 0 ? row.value("get_per_s", 0.0) / base_get : 0;
    std::printf("%-24s POST %.2fx   GET %.2fx of the SQLite node\n",
                row.value("deployment", "").c_str(), row.value("post_ratio_to_sqlite", 0.0),
                row.value("get_ratio_to_sqlite", 0.0));
  }
  const json failover = Failover(pg, o);
  const json report = {{"clients", o.clients},
                       {"seconds", o.seconds},
                       {"cores", std::thread::hardware_concurrency()},
                       {"control_plane", control},
                       {"failover", failover}};
  if (!o.out.empty()) std::ofstream(o.out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace airlock::bench

int main(int argc, char** argv) {
  return airlock::bench::Main(argc, argv);
}
