// Metrics read off the audit as it is written: every decision and every
// data access is an audit record, so the record is where they are counted,
// whichever part of the kernel did the work.
//
//   airlock_audit_commit_duration_seconds        histogram  an append until durable
//   airlock_audit_append_failures_total{code}     counter    appends refused or lost
//   airlock_tunnel_queries_total{transport,outcome}   counter
//   airlock_tunnel_query_duration_seconds{transport}  histogram
//   airlock_tunnel_rows_total{transport}          counter    rows sent to clients
//   airlock_ingested_rows_total{connector}        counter    rows pulled into enclaves
//   airlock_ingested_bytes_total{connector}       counter
//   airlock_ingest_failures_total{connector}      counter
//   airlock_request_state_duration_seconds{state} histogram  time spent in a state
//                                                (pending_approval: the approval wait;
//                                                provisioning; ingesting ...)
//   airlock_request_first_query_seconds           histogram  ready until the first query
//
// Times in a state are measured in this process: a replica sees the states
// it saw a request enter and leave.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernel/audit/audit_log.h"
#include "kernel/core/metrics.h"

namespace airlock {

class AuditMetrics final : public AuditAppendObserver {
 public:
  // `connector_of`: dataset name -> connector instance, for the ingestion
  // metrics' label.
  AuditMetrics(Metrics* metrics, std::map<std::string, std::string> connector_of);
  // Stops observing `log` (the one passed to Observe), if any.
  ~AuditMetrics() override;

  // Starts observing `log`'s appends; `log` must outlive this object or
  // be detached by its destruction.
  void Observe(AuditLog* log);

  void OnAppended(const std::vector<nlohmann::json>& events, const Status& status,
                  std::chrono::steady_clock::duration took) override;

 private:
  void Count(const nlohmann::json& event, std::chrono::steady_clock::time_point now);
  void Transition(const nlohmann::json& event, std::chrono::steady_clock::time_point now);

  Metrics* const metrics_;
  const std::map<std::string, std::string> connector_of_;
  AuditLog* log_ = nullptr;
  Metrics::Histogram& commit_;

  // When each live request entered its current state; ready requests
  // waiting for their first query. Bounded: ended requests are forgotten,
  // and no more are tracked once kMaxTracked are.
  static constexpr size_t kMaxTracked = 100000;
  std::mutex mu_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point>
      entered_;                                                                   // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> ready_;  // GUARDED_BY(mu_)
};

}  // namespace airlock
