// Where each audit export destination stands (audit.export): the last
// record delivered and where reading goes on after it, kept durably so a
// restarted kernel resumes there, and held by one kernel at a time so
// replicas sharing one chain do not all send it.
//
// Two homes: files under the state directory for a kernel with its own log
// (always held: nobody else reads that log), and a table beside the shared
// chain in PostgreSQL (postgres_export_cursors.h) where replicas take turns
// through a lease the database's clock times.
//
// Thread-safety: each destination's cursor is used by one thread (its
// sender); different destinations may be used from different threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "airlock/cpp/status.hpp"

namespace airlock {

struct ExportCursor {
  uint64_t seq = 0;       // the last record delivered (0: none yet)
  uint64_t position = 0;  // where AuditLog::ReadForward goes on after it
};

class ExportCursors {
 public:
  virtual ~ExportCursors() = default;

  // The stored cursor of `name`, without taking it (a start-up check).
  virtual Result<ExportCursor> Peek(const std::string& name) = 0;
  // Takes or renews this kernel's hold on `name` and returns its cursor;
  // nullopt while another kernel holds it. Cheap to call often: a renewal
  // goes to the store only when a third of the hold has passed.
  virtual Result<std::optional<ExportCursor>> Hold(const std::string& name) = 0;
  // Saves `cursor` (and renews the hold). FailedPrecondition when the hold
  // was lost meanwhile: another kernel exports from the stored cursor now.
  virtual Status Save(const std::string& name, const ExportCursor& cursor) = 0;
  // Gives the hold up so another kernel takes over at once (a clean stop).
  virtual void Release(const std::string& name) = 0;
  // Where `name`'s cursor is kept, for messages.
  virtual std::string Where(const std::string& name) const = 0;
};

// Cursor files <dir>/<name>.cursor ({"seq","position"}), each replaced
// atomically (temporary file, fsync, rename) at every Save.
Result<std::unique_ptr<ExportCursors>> FileExportCursors(const std::string& dir);

}  // namespace airlock
