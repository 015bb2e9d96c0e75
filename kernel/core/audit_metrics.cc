#include "kernel/core/audit_metrics.h"

#include <optional>
#include <utility>

#include "kernel/lifecycle/request_state.h"

namespace airlock {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string Label(const std::string& name, const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped.push_back('\\');
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped.push_back(c);
  }
  return name + "=\"" + escaped + "\"";
}

std::string StringOf(const json& event, const char* key) {
  const auto it = event.find(key);
  return it != event.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t NumberOf(const json& event, const char* key) {
  const auto it = event.find(key);
  if (it == event.end() || !it->is_number()) return 0;
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}

bool IsFinal(const std::string& state) {
  const std::optional<RequestState> parsed = ParseRequestState(state);
  return parsed.has_value() && IsTerminal(*parsed);
}

}  // namespace

AuditMetrics::AuditMetrics(Metrics* metrics, std::map<std::string, std::string> connector_of)
    : metrics_(metrics),
      connector_of_(std::move(connector_of)),
      commit_(metrics->GetHistogram("airlock_audit_commit_duration_seconds",
                                    "Audit appends, from the call until the record is durable", "",
                                    Metrics::LatencyBuckets())) {}

AuditMetrics::~AuditMetrics() {
  if (log_ != nullptr) log_->set_append_observer(nullptr);
}

void AuditMetrics::Observe(AuditLog* log) {
  log_ = log;
  log->set_append_observer(this);
}

void AuditMetrics::OnAppended(const std::vector<json>& events, const Status& status,
                              Clock::duration took) {
  commit_.Observe(std::chrono::duration<double>(took).count());
  if (!status.ok()) {
    metrics_
        ->Get("airlock_audit_append_failures_total", "Audit appends that did not become durable",
              "counter", Label("code", StatusCodeName(status.code())))
        .Add(static_cast<int64_t>(events.size()));
    return;
  }
  const Clock::time_point now = Clock::now();
  for (const json& event : events) Count(event, now);
}

void AuditMetrics::Count(const json& event, Clock::time_point now) {
  const std::string name = StringOf(event, "event");
  if (name == "tunnel.query") {
    const std::string transport = Label("transport", StringOf(event, "transport"));
    metrics_
        ->Get("airlock_tunnel_queries_total", "Queries through tunnels by transport and outcome",
              "counter", transport + "," + Label("outcome", StringOf(event, "outcome")))
        .Add();
    metrics_
        ->GetHistogram("airlock_tunnel_query_duration_seconds", "Tunnel query time by transport",
                       transport, Metrics::LatencyBuckets())
        .Observe(static_cast<double>(NumberOf(event, "duration_ms")) / 1000.0);
    metrics_
        ->Get("airlock_tunnel_rows_total", "Rows sent to clients through tunnels", "counter",
              transport)
        .Add(NumberOf(event, "rows"));
    std::lock_guard lock(mu_);
    if (auto it = ready_.find(StringOf(event, "request_id")); it != ready_.end()) {
      metrics_
          ->GetHistogram("airlock_request_first_query_seconds",
                         "From ready until the request's first query", "", Metrics::PhaseBuckets())
          .Observe(std::chrono::duration<double>(now - it->second).count());
      ready_.erase(it);
    }
    return;
  }
  if (name == "enclave.pull_done" || name == "enclave.pull_failed") {
    const auto it = connector_of_.find(StringOf(event, "dataset"));
    const std::string connector = Label("connector", it != connector_of_.end() ? it->second : "");
    if (name == "enclave.pull_failed") {
      metrics_
          ->Get("airlock_ingest_failures_total", "Dataset pulls that failed, by connector",
                "counter", connector)
          .Add();
      return;
    }
    metrics_
        ->Get("airlock_ingested_rows_total", "Rows pulled into enclaves, by connector", "counter",
              connector)
        .Add(NumberOf(event, "rows"));
    metrics_
        ->Get("airlock_ingested_bytes_total", "Bytes pulled into enclaves, by connector", "counter",
              connector)
        .Add(NumberOf(event, "bytes"));
    return;
  }
  if (name.rfind("request.", 0) == 0 && event.contains("from") && event.contains("to")) {
    Transition(event, now);
  }
}

void AuditMetrics::Transition(const json& event, Clock::time_point now) {
  const std::string id = StringOf(event, "request_id");
  const std::string from = StringOf(event, "from");
  const std::string to = StringOf(event, "to");
  if (id.empty()) return;
  std::lock_guard lock(mu_);
  if (auto it = entered_.find(id); it != entered_.end()) {
    metrics_
        ->GetHistogram("airlock_request_state_duration_seconds",
                       "Time requests spent in a state before leaving it", Label("state", from),
                       Metrics::PhaseBuckets())
        .Observe(std::chrono::duration<double>(now - it->second).count());
    it->second = now;
  } else if (entered_.size() < kMaxTracked) {
    entered_.emplace(id, now);
  }
  if (to == "ready" && ready_.size() < kMaxTracked) ready_.emplace(id, now);
  if (IsFinal(to)) {
    entered_.erase(id);
    ready_.erase(id);
  }
}

}  // namespace airlock
