// Metrics counted off the audit as it is written (kernel/core/audit_metrics.h),
// on a real audit log file.
#include "kernel/core/audit_metrics.h"

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using nlohmann::json;

// The value of the sample `series` (name and labels as rendered), or -1.
double Sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

class AuditMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = AuditLog::Open(dir_.File("audit.log"));
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    observer_ = std::make_unique<AuditMetrics>(
        &metrics_, std::map<std::string, std::string>{{"orders", "pg"}, {"regions", "files"}});
    observer_->Observe(log_.get());
  }

  void Append(json event) { ASSERT_TRUE(log_->Append(std::move(event)).ok()); }

  void Move(const std::string& id, const std::string& from, const std::string& to) {
    Append({{"event", "request." + to}, {"request_id", id}, {"from", from}, {"to", to}});
  }

  test::TempDir dir_{"airlock-audit-metrics-"};
  Metrics metrics_;
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<AuditMetrics> observer_;
};

TEST_F(AuditMetricsTest, QueriesPullsAndLifecyclePhasesAreCounted) {
  Move("r1", "submitted", "evaluating");
  Move("r1", "evaluating", "pending_approval");
  std::this_thread::sleep_for(std::chrono::milliseconds(120));  // the approval wait
  Move("r1", "pending_approval", "approved");
  Append({{"event", "enclave.pull_done"},
          {"request_id", "r1"},
          {"dataset", "orders"},
          {"rows", 1000},
          {"bytes", 64000}});
  Append({{"event", "enclave.pull_done"},
          {"request_id", "r1"},
          {"dataset", "regions"},
          {"rows", 3},
          {"bytes", 90}});
  Append({{"event", "enclave.pull_failed"}, {"request_id", "r1"}, {"dataset", "orders"}});
  Move("r1", "approved", "ready");
  for (int i = 0; i < 3; ++i) {
    Append({{"event", "tunnel.query"},
            {"request_id", "r1"},
            {"transport", "pgwire"},
            {"rows", 10},
            {"duration_ms", 40.0},
            {"outcome", "ok"}});
  }
  Append({{"event", "tunnel.query"},
          {"request_id", "r1"},
          {"transport", "https"},
          {"rows", 0},
          {"duration_ms", 2000.0},
          {"outcome", "invalid_argument"}});
  Move("r1", "ready", "closed");

  const std::string text = metrics_.Render();
  EXPECT_EQ(Sample(text, "airlock_tunnel_queries_total{transport=\"pgwire\",outcome=\"ok\"}"), 3);
  EXPECT_EQ(Sample(text,
                   "airlock_tunnel_queries_total{transport=\"https\",outcome="
                   "\"invalid_argument\"}"),
            1);
  EXPECT_EQ(Sample(text, "airlock_tunnel_rows_total{transport=\"pgwire\"}"), 30);
  EXPECT_EQ(Sample(text,
                   "airlock_tunnel_query_duration_seconds_bucket{transport=\"pgwire\","
                   "le=\"0.05\"}"),
            3);
  EXPECT_EQ(Sample(text,
                   "airlock_tunnel_query_duration_seconds_bucket{transport=\"https\","
                   "le=\"1\"}"),
            0);
  EXPECT_EQ(Sample(text, "airlock_ingested_rows_total{connector=\"pg\"}"), 1000);
  EXPECT_EQ(Sample(text, "airlock_ingested_bytes_total{connector=\"files\"}"), 90);
  EXPECT_EQ(Sample(text, "airlock_ingest_failures_total{connector=\"pg\"}"), 1);
  // The approval wait: 120 ms or more, in one observation.
  EXPECT_EQ(
      Sample(text, "airlock_request_state_duration_seconds_count{state=\"pending_approval\"}"), 1);
  EXPECT_GE(Sample(text, "airlock_request_state_duration_seconds_sum{state=\"pending_approval\"}"),
            0.12);
  EXPECT_EQ(Sample(text,
                   "airlock_request_state_duration_seconds_bucket{state=\"pending_approval\","
                   "le=\"0.1\"}"),
            0);
  EXPECT_EQ(Sample(text, "airlock_request_state_duration_seconds_count{state=\"ready\"}"), 1);
  EXPECT_EQ(Sample(text, "airlock_request_first_query_seconds_count"), 1);
  // Every append's commit time: 5 transitions, 3 pulls, 4 queries.
  EXPECT_EQ(Sample(text, "airlock_audit_commit_duration_seconds_count"), 12);
}

TEST_F(AuditMetricsTest, RefusedAppendsAreCountedNotObservedAsEvents) {
  // A reserved key makes the append invalid: nothing is recorded or counted as a query.
  EXPECT_FALSE(log_->Append({{"event", "tunnel.query"}, {"transport", "https"}, {"seq", 1}}).ok());
  const std::string text = metrics_.Render();
  EXPECT_EQ(Sample(text, "airlock_audit_append_failures_total{code=\"invalid_argument\"}"), 1);
  EXPECT_EQ(Sample(text, "airlock_tunnel_queries_total{transport=\"https\",outcome=\"\"}"), -1);
  // Detached: later appends are not observed.
  observer_.reset();
  Append({{"event", "tunnel.query"}, {"transport", "https"}, {"outcome", "ok"}});
}

}  // namespace
}  // namespace airlock
