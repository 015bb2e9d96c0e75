// Streams the audit log to the places a SIEM reads from (audit.export): for
// each configured destination, every record, in order, at least once, from a
// durable cursor.
//
// One thread per destination reads the log forward from its cursor
// (AuditLog::ReadForward: durable records only), POSTs them as JSON lines
// (one record a line, exactly as the log holds it, chain fields included,
// so the receiver can check the chain and dedupe on "seq"), and moves the
// cursor on only once the receiver answered 2xx. The cursor
// (<state_dir>/audit-export/<name>.cursor: {"seq","position"}) is written
// atomically after every acknowledged batch, so a kernel killed between a
// delivery and its cursor sends that batch again: at least once, never a
// gap. A receiver that fails is retried with capped exponential backoff;
// the requests of the kernel never wait for it, and nothing is dropped:
// the backlog is the audit log itself. A backlog over lag_alarm_records is
// logged as an alarm; metrics: airlock_audit_export_records_total,
// _batches_total, _failures_total, _lag_records and _last_seq, each with
// sink="<name>".
//
// Thread-safety: Start and Stop from one thread; Wake from any.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"
#include "kernel/core/config.h"

namespace airlock {

class AuditLog;
class Metrics;

class AuditExporter {
 public:
  // `authorizations[i]` is the resolved Authorization value of
  // `exports[i]` (empty: none). Reads each cursor; InvalidArgument when one
  // is unreadable or names no place in the log.
  static Result<std::unique_ptr<AuditExporter>> Start(const std::vector<AuditExportConfig>& exports,
                                                      std::vector<Secret> authorizations,
                                                      const std::string& state_dir,
                                                      const AuditLog* log, Metrics* metrics);
  // Stops every sender (a delivery in flight ends with its timeout).
  ~AuditExporter();
  AuditExporter(const AuditExporter&) = delete;
  AuditExporter& operator=(const AuditExporter&) = delete;

  // New records are durable: the senders look now rather than at their
  // next poll.
  void Wake();

 private:
  class Sender;
  AuditExporter() = default;
  std::vector<std::unique_ptr<Sender>> senders_;
};

}  // namespace airlock
