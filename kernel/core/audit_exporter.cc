#include "kernel/core/audit_exporter.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kernel/audit/audit_log.h"
#include "kernel/common/http_call.h"
#include "kernel/core/metrics.h"
#include "kernel/core/syslog_tls.h"

namespace airlock {

namespace {

// How often a sender looks for new records when nobody woke it.
constexpr auto kPollInterval = std::chrono::milliseconds(500);
// How often a standby (another replica exports the destination) looks
// whether the destination is free.
constexpr auto kStandbyInterval = std::chrono::milliseconds(1000);

}  // namespace

class AuditExporter::Sender {
 public:
  // `syslog`: the connection of a syslog destination (null for https).
  Sender(AuditExportConfig config, Secret authorization, ExportCursors* cursors,
         const AuditLog* log, Metrics* metrics, std::unique_ptr<SyslogTlsClient> syslog)
      : config_(std::move(config)),
        authorization_(std::move(authorization)),
        cursors_(cursors),
        log_(log),
        syslog_(std::move(syslog)) {
    const std::string label = "sink=\"" + config_.name + "\"";
    records_ = &metrics->Get("airlock_audit_export_records_total",
                             "Audit records delivered to an export destination", "counter", label);
    batches_ = &metrics->Get("airlock_audit_export_batches_total",
                             "Batches of audit records delivered", "counter", label);
    failures_ =
        &metrics->Get("airlock_audit_export_failures_total",
                      "Failed deliveries of audit records (each retried)", "counter", label);
    lag_ = &metrics->Get("airlock_audit_export_lag_records",
                         "Durable audit records not yet delivered", "gauge", label);
    last_seq_ = &metrics->Get("airlock_audit_export_last_seq",
                              "Sequence number of the last audit record delivered", "gauge", label);
    active_ = &metrics->Get("airlock_audit_export_active",
                            "1 while this kernel exports to the destination (replicas sharing a "
                            "chain take turns), else 0",
                            "gauge", label);
    thread_ = std::thread([this] { Run(); });
  }

  ~Sender() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Wake() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }

 private:
  // Waits `for_how_long` unless woken or stopped; false once stopping.
  bool Pause(std::chrono::milliseconds for_how_long, bool wake_early) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, for_how_long, [&] { return stopping_ || (wake_early && woken_); });
    woken_ = false;
    return !stopping_;
  }

  void Run() {
    Export();
    cursors_->Release(config_.name);
  }

  // Until stopped: while this kernel holds the destination, delivers what
  // follows its cursor; otherwise waits to be the one.
  void Export() {
    auto backoff = std::chrono::milliseconds(250);
    bool alarmed = false, failing = false, active = false;
    while (true) {
      auto held = cursors_->Hold(config_.name);
      if (held.ok() && !held->has_value()) {
        if (active) {
          spdlog::info("audit export {}: another replica exports it now", config_.name);
        }
        active = false;
        active_->Set(0);
        lag_->Set(0);
        if (!Pause(kStandbyInterval, /*wake_early=*/false)) return;
        continue;
      }
      if (held.ok()) {
        if (!active) {
          spdlog::info("audit export {}: exporting after seq {} ({})", config_.name, (*held)->seq,
                       cursors_->Where(config_.name));
        }
        active = true;
        active_->Set(1);
        cursor_ = **held;
        last_seq_->Set(static_cast<int64_t>(cursor_.seq));
      }
      auto batch = held.ok() ? log_->ReadForward(cursor_.position,
                                                 static_cast<size_t>(config_.batch_records))
                             : Result<std::vector<AuditRecordAt>>(held.status());
      const int64_t head = static_cast<int64_t>(log_->head().seq);
      lag_->Set(std::max<int64_t>(0, head - static_cast<int64_t>(cursor_.seq)));
      if (head - static_cast<int64_t>(cursor_.seq) > config_.lag_alarm_records) {
        if (!alarmed) {
          spdlog::error("audit export {}: {} records wait for delivery (alarm at {})", config_.name,
                        head - static_cast<int64_t>(cursor_.seq), config_.lag_alarm_records);
        }
        alarmed = true;
      } else {
        alarmed = false;
      }
      Status outcome = batch.ok() ? Status::Ok() : batch.status();
      if (outcome.ok() && batch->empty()) {
        if (!Pause(kPollInterval, /*wake_early=*/true)) return;
        continue;
      }
      if (outcome.ok()) outcome = Deliver(*batch);
      if (outcome.ok()) {
        cursor_ = ExportCursor{batch->back().record.value("seq", cursor_.seq), batch->back().after};
        if (Status saved = cursors_->Save(config_.name, cursor_); !saved.ok()) {
          // Delivered but not remembered (sent again after a restart), or
          // another replica took over meanwhile (and may send it again).
          spdlog::warn("audit export {}: {}", config_.name, saved.message());
        }
        records_->Add(static_cast<int64_t>(batch->size()));
        batches_->Add();
        last_seq_->Set(static_cast<int64_t>(cursor_.seq));
        if (failing) spdlog::info("audit export {}: delivering again", config_.name);
        failing = false;
        backoff = std::chrono::milliseconds(250);
        continue;
      }
      failures_->Add();
      if (!failing) {
        spdlog::warn("audit export {}: {}; retrying with backoff", config_.name, outcome.message());
      }
      failing = true;
      if (!Pause(backoff, /*wake_early=*/false)) return;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(config_.max_backoff_ms));
    }
  }

  Status Deliver(const std::vector<AuditRecordAt>& batch) {
    if (syslog_ != nullptr) {
      std::vector<std::string> messages;
      messages.reserve(batch.size());
      for (const AuditRecordAt& at : batch) {
        messages.push_back(SyslogMessage(at.record, hostname_, pid_));
      }
      return syslog_->Send(messages);
    }
    std::string body;
    for (const AuditRecordAt& at : batch) {
      body += at.record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      body += '\n';
    }
    HttpCall call;
    call.method = "POST";
    call.url = config_.url;
    call.ca_file = config_.ca_file;
    call.timeout_seconds = std::max<int64_t>(1, config_.timeout_ms / 1000);
    call.headers = {
        {"Content-Type", "application/x-ndjson"},
        {"Airlock-Audit-First-Seq", std::to_string(batch.front().record.value("seq", 0))},
        {"Airlock-Audit-Last-Seq", std::to_string(batch.back().record.value("seq", 0))}};
    if (!authorization_.empty()) {
      call.headers.emplace_back("Authorization", std::string(authorization_.Reveal()));
    }
    call.body = std::move(body);
    auto answer = HttpSend(call);
    if (!answer.ok()) return answer.status();
    if (answer->status < 200 || answer->status >= 300) {
      return Status::Unavailable("the receiver answered " + std::to_string(answer->status));
    }
    return Status::Ok();
  }

  const AuditExportConfig config_;
  const Secret authorization_;
  ExportCursors* const cursors_;
  ExportCursor cursor_;  // the sender thread's
  const AuditLog* log_;
  const std::unique_ptr<SyslogTlsClient> syslog_;
  const std::string hostname_ = [] {
    char name[256] = {0};
    return ::gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("-");
  }();
  const int pid_ = static_cast<int>(::getpid());
  Metrics::Counter* records_ = nullptr;
  Metrics::Counter* batches_ = nullptr;
  Metrics::Counter* failures_ = nullptr;
  Metrics::Counter* lag_ = nullptr;
  Metrics::Counter* last_seq_ = nullptr;
  Metrics::Counter* active_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool woken_ = false;     // guarded by mu_
  std::thread thread_;
};

Result<std::unique_ptr<AuditExporter>> AuditExporter::Start(
    const std::vector<AuditExportConfig>& exports, std::vector<Secret> authorizations,
    std::unique_ptr<ExportCursors> cursors, const AuditLog* log, Metrics* metrics) {
  std::unique_ptr<AuditExporter> exporter(new AuditExporter());
  exporter->cursors_ = std::move(cursors);
  for (size_t i = 0; i < exports.size(); ++i) {
    AIRLOCK_ASSIGN_OR_RETURN(ExportCursor cursor, exporter->cursors_->Peek(exports[i].name));
    // The cursor must name a place in this log (not another log's).
    auto check = log->ReadForward(cursor.position, 1);
    if (!check.ok()) {
      return Status::InvalidArgument("the audit export cursor " +
                                     exporter->cursors_->Where(exports[i].name) +
                                     " does not fit this audit log (" + check.status().message() +
                                     "); remove it to export the whole log again");
    }
    std::unique_ptr<SyslogTlsClient> syslog;
    if (exports[i].type == "syslog") {
      AIRLOCK_ASSIGN_OR_RETURN(
          syslog, SyslogTlsClient::Create(exports[i].url, exports[i].ca_file,
                                          std::chrono::milliseconds(exports[i].timeout_ms)));
    }
    exporter->senders_.push_back(std::make_unique<Sender>(
        exports[i], i < authorizations.size() ? std::move(authorizations[i]) : Secret(),
        exporter->cursors_.get(), log, metrics, std::move(syslog)));
  }
  return exporter;
}

// Senders stop (and give their holds up) before the cursors go.
AuditExporter::~AuditExporter() {
  senders_.clear();
}

void AuditExporter::Wake() {
  for (auto& sender : senders_) sender->Wake();
}

}  // namespace airlock
