// Streams the audit log to the places a SIEM reads from (audit.export): for
// each configured destination, every record, in order, at least once, from a
// durable cursor.
//
// One thread per destination reads the log forward from its cursor
// (AuditLog::ReadForward: durable records only), POSTs them as JSON lines
// (one record a line, exactly as the log holds it, chain fields included,
// so the receiver can check the chain and dedupe on "seq"), and moves the
// cursor on only once the receiver answered 2xx. The cursor is saved
// durably after every acknowledged batch (export_cursors.h: a file under
// the state directory, or a row beside a chain shared in PostgreSQL), so a
// kernel killed between a delivery and its cursor sends that batch again:
// at least once, never a gap. Replicas sharing a chain take turns: one
// holds each destination and exports it, the others stand by and one of
// them takes over from the stored cursor when the holder stops or dies. A receiver that fails is
// retried with capped exponential backoff; the requests of the kernel never wait for it, and
// nothing is dropped: the backlog is the audit log itself. A backlog over lag_alarm_records is
// logged as an alarm; metrics: airlock_audit_export_records_total,
// _batches_total, _failures_total, _lag_records, _last_seq and _active,
// each with sink="<name>".
//
// Thread-safety: Start and Stop from one thread; Wake from any.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/export_cursors.h"
#include "kernel/common/secret.h"
#include "kernel/core/config.h"

namespace airlock {

class AuditLog;
class Metrics;

class AuditExporter {
 public:
  // `authorizations[i]` is the resolved Authorization value of
  // `exports[i]` (empty: none); `cursors` is where each destination's
  // cursor is kept. Reads each cursor; InvalidArgument when one is
  // unreadable or names no place in the log.
  static Result<std::unique_ptr<AuditExporter>> Start(const std::vector<AuditExportConfig>& exports,
                                                      std::vector<Secret> authorizations,
                                                      std::unique_ptr<ExportCursors> cursors,
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
  std::unique_ptr<ExportCursors> cursors_;
  std::vector<std::unique_ptr<Sender>> senders_;
};

}  // namespace airlock
