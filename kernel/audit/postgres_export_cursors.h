// Audit export cursors beside the shared chain in PostgreSQL: table
// audit_export_cursors (schema version 9), one row per destination with its
// cursor and the replica holding it until a time of the database's clock.
//
// One replica exports each destination at a time. Whoever holds a row
// renews it as it goes (Hold, Save); a replica that stops cleanly gives it
// up, and one that dies loses it when the hold runs out, after which
// another replica takes it and resumes from the stored cursor. A replica
// that lost its hold while a batch was in flight finds out at its Save,
// which changes nothing: that batch may arrive twice, never a gap.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "kernel/audit/export_cursors.h"
#include "kernel/audit/postgres_audit_log.h"
#include "kernel/common/secret.h"

namespace airlock {

// `holder` names this replica in the rows; `hold` is how long a hold lasts
// unrenewed. InvalidArgument for a malformed connection string; nothing is
// connected until the first call.
Result<std::unique_ptr<ExportCursors>> PostgresExportCursors(const Secret& dsn,
                                                             const PostgresAuditOptions& options,
                                                             std::string holder,
                                                             std::chrono::milliseconds hold);

}  // namespace airlock
