// GET /metrics of a real airlockd after a known workload, parsed by the
// reference Prometheus text parser (Debian's python3-prometheus-client):
// the exposition is valid, and the counters and histograms say what the
// workload did (one request through its life, five queries, one refused).
#include <cctype>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/support/http_client.h"
#include "tests/support/shell_command.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_metrics_alice_token";
constexpr const char* kBob = "alk_metrics_bob_token";

// Samples as the parser gives them: name and labels to value.
class Samples {
 public:
  explicit Samples(const json& parsed) : parsed_(parsed) {}
  // The value of the one sample named `name` whose labels include `labels`;
  // -1 when there is none.
  double Value(const std::string& name, const json& labels = json::object()) const {
    for (const json& s : parsed_) {
      if (s[0] != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels.items()) {
        if (!s[1].contains(k) || s[1][k] != v) match = false;
      }
      if (match) return s[2].get<double>();
    }
    return -1;
  }

  // Every sample: [name, labels, value].
  const json& all() const { return parsed_; }

 private:
  json parsed_;
};

// GET /metrics parsed by the reference parser (a failure if it does not parse).
Samples Scrape(HttpClient& api, const TempDir& dir) {
  auto scraped = api.Get("/metrics", {});
  EXPECT_EQ(scraped.status, 200u);
  const std::string text_file = dir.File("metrics.txt");
  std::ofstream(text_file) << scraped.body;
  const ShellResult parsed = RunShell("/usr/bin/python3 " + std::string(AIRLOCK_SOURCE_DIR) +
                                      "/tests/support/prometheus_samples.py < " + text_file);
  EXPECT_EQ(parsed.exit_code, 0) << "the exposition does not parse:\n" << scraped.body;
  return Samples(parsed.exit_code == 0 ? json::parse(parsed.output) : json::array());
}

TEST(MetricsE2E, TheExpositionParsesAndCountsAKnownWorkload) {
  TempDir dir("airlock-metrics-");
  const TestPki pki = GenerateTestPki(dir.path());
  KernelProcess kernel(dir.path(),
                       OrdersKernelConfig(dir.path(), pki, AliceAndBobIdentity(kAlice, kBob)));
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());

  auto created =
      api.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"metrics"})", Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the approval wait
  ASSERT_EQ(api.Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
  ASSERT_EQ(WaitForRequestState(api, id, Auth(kAlice), "ready"), "ready");
  ClientResponse grant;
  TunnelSession tunnel = ConnectTunnel(api, id, Auth(kAlice), pki.ca.cert_file, &grant);
  ASSERT_EQ(grant.status, 200u) << grant.body;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(TunnelQuery(tunnel, "SELECT * FROM orders").status, 200u);
  }
  EXPECT_EQ(TunnelQuery(tunnel, "SELECT nope FROM orders").status, 400u);
  // The live enclave's memory as it reported it: its data; no resident
  // memory of its own (the in-process isolator shares the kernel's).
  {
    const Samples live = Scrape(api, dir);
    EXPECT_EQ(live.Value("airlock_enclaves_active"), 1);
    EXPECT_GT(live.Value("airlock_enclave_data_bytes"), 0);
    EXPECT_EQ(live.Value("airlock_enclave_resident_bytes"), 0);
  }
  ASSERT_EQ(api.Post("/v1/requests/" + id + "/revoke", "{}", Auth(kAlice)).status, 200u);
  EXPECT_EQ(api.Get("/v1/requests/does-not-exist", Auth(kAlice)).status, 404u);

  // The enclave goes with the revocation, and its memory with it.
  Samples s = Scrape(api, dir);
  for (int i = 0; i < 100 && s.Value("airlock_enclaves_active") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s = Scrape(api, dir);
  }
  EXPECT_EQ(s.Value("airlock_enclaves_active"), 0);
  EXPECT_EQ(s.Value("airlock_enclave_data_bytes"), 0);

  // Queries by transport and outcome; rows sent (orders.csv has 2 rows).
  EXPECT_EQ(s.Value("airlock_tunnel_queries_total", {{"transport", "https"}, {"outcome", "ok"}}),
            5);
  EXPECT_EQ(s.Value("airlock_tunnel_queries_total",
                    {{"transport", "https"}, {"outcome", "invalid_argument"}}),
            1);
  EXPECT_EQ(s.Value("airlock_tunnel_rows_total", {{"transport", "https"}}), 10);
  EXPECT_EQ(s.Value("airlock_tunnel_query_duration_seconds_count", {{"transport", "https"}}), 6);
  EXPECT_EQ(s.Value("airlock_ingested_rows_total", {{"connector", "files"}}), 2);
  EXPECT_GT(s.Value("airlock_ingested_bytes_total", {{"connector", "files"}}), 0);
  // The lifecycle: one approval wait of at least 300 ms, one first query.
  EXPECT_EQ(
      s.Value("airlock_request_state_duration_seconds_count", {{"state", "pending_approval"}}), 1);
  EXPECT_GE(s.Value("airlock_request_state_duration_seconds_sum", {{"state", "pending_approval"}}),
            0.3);
  EXPECT_EQ(s.Value("airlock_request_state_duration_seconds_count", {{"state", "ready"}}), 1);
  EXPECT_EQ(s.Value("airlock_request_first_query_seconds_count"), 1);
  // One policy decision; one enclave sealed, which takes some time.
  EXPECT_EQ(s.Value("airlock_policy_decision_duration_seconds_count"), 1);
  EXPECT_EQ(s.Value("airlock_enclave_seal_seconds_count"), 1);
  EXPECT_GT(s.Value("airlock_enclave_seal_seconds_sum"), 0);
  // HTTP latency by route pattern and status class.
  EXPECT_EQ(s.Value("airlock_http_request_duration_seconds_count",
                    {{"method", "POST"}, {"route", "/v1/requests"}, {"code", "2xx"}}),
            1);
  EXPECT_GE(s.Value("airlock_http_request_duration_seconds_count",
                    {{"method", "GET"}, {"route", "/v1/requests/{id}"}, {"code", "2xx"}}),
            1);
  EXPECT_EQ(s.Value("airlock_http_request_duration_seconds_count",
                    {{"method", "GET"}, {"route", "/v1/requests/{id}"}, {"code", "4xx"}}),
            1);
  // Audit commits; the process and SQLite gauges.
  EXPECT_GE(s.Value("airlock_audit_commit_duration_seconds_count"), 10);
  EXPECT_GT(s.Value("process_resident_memory_bytes"), 1e6);
  EXPECT_GT(s.Value("process_open_fds"), 3);
  EXPECT_GT(s.Value("airlock_sqlite_memory_bytes"), 0);
  EXPECT_GT(s.Value("airlock_heap_allocated_bytes"), 0);
  // The bounded caches: one request audited, one view rendered.
  EXPECT_EQ(s.Value("airlock_audit_index_requests"), 1);
  EXPECT_EQ(s.Value("airlock_request_view_cache_entries"), 1);
  // Nothing waits at rest: every append committed, no notifier configured.
  EXPECT_EQ(s.Value("airlock_audit_queue_records"), 0);
  EXPECT_EQ(s.Value("airlock_notifications_pending"), 0);

  // The Grafana dashboard in deploy/ reads only metrics the kernel exports
  // (some appear only once something happened: an export, a failed append).
  std::ifstream dashboard_file(std::string(AIRLOCK_SOURCE_DIR) +
                               "/deploy/grafana/airlock-dashboard.json");
  const json dashboard = json::parse(dashboard_file, nullptr, false);
  ASSERT_TRUE(dashboard.is_object()) << "deploy/grafana/airlock-dashboard.json does not parse";
  const std::set<std::string> registered_on_first_use = {
      "airlock_audit_append_failures_total", "airlock_audit_export_lag_records",
      "airlock_audit_export_active", "airlock_event_watchers",
      "airlock_notification_delivery_seconds"};
  std::set<std::string> families;
  for (const json& sample : s.all()) {
    std::string name = sample[0];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(suffix)) name.resize(name.size() - std::string(suffix).size());
    }
    families.insert(name);
  }
  int referenced = 0;
  for (const json& panel : dashboard["panels"]) {
    for (const json& target : panel["targets"]) {
      const std::string expr = target.value("expr", "");
      for (size_t at = 0; (at = expr.find_first_of("ap", at)) != std::string::npos;) {
        const bool starts =
            expr.compare(at, 8, "airlock_") == 0 || expr.compare(at, 8, "process_") == 0;
        if (!starts || (at > 0 && (std::isalnum(static_cast<unsigned char>(expr[at - 1])) ||
                                   expr[at - 1] == '_'))) {
          ++at;
          continue;
        }
        size_t end = at;
        while (end < expr.size() &&
               (std::isalnum(static_cast<unsigned char>(expr[end])) || expr[end] == '_')) {
          ++end;
        }
        std::string name = expr.substr(at, end - at);
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
          if (name.ends_with(suffix)) name.resize(name.size() - std::string(suffix).size());
        }
        ++referenced;
        if (!registered_on_first_use.count(name)) {
          EXPECT_TRUE(families.count(name)) << panel.value("title", "") << " reads " << name
                                            << ", which /metrics does not export";
        }
        at = end;
      }
    }
  }
  EXPECT_GT(referenced, 15);
}

}  // namespace
}  // namespace airlock::test
