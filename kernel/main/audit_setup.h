// Opens the kernel's audit trail as the configuration describes it (its
// backend, audit.backend): resolves
// the checkpoint signing key's secret reference (never into the state
// directory, never printed), and hands the key to AuditTrail.
#pragma once

#include <memory>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_trail.h"
#include "kernel/audit/postgres_audit_log.h"
#include "kernel/core/config.h"
#include "kernel/main/state_backend.h"

namespace airlock {

// The file at config.audit_path, or (audit.backend "postgres") the chain in
// the state store's database; checkpoints beside audit_path either way.
Result<std::unique_ptr<AuditTrail>> OpenKernelAuditTrail(const KernelConfig& config);

// The audit chain's options for the configured database.
PostgresAuditOptions PostgresAuditOptionsFor(const PostgresConnection& connection,
                                             AuditOptions log = {});

}  // namespace airlock
