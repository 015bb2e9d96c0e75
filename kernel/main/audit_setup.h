// Opens the kernel's audit trail as the configuration describes it: resolves
// the checkpoint signing key's secret reference (never into the state
// directory, never printed), and hands the key to AuditTrail.
#pragma once

#include <memory>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_trail.h"
#include "kernel/core/config.h"

namespace airlock {

Result<std::unique_ptr<AuditTrail>> OpenKernelAuditTrail(const KernelConfig& config);

}  // namespace airlock
