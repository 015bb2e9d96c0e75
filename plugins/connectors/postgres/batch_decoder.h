// Binary-format result rows (PostgreSQL's send functions) -> Arrow columns.
#pragma once

#include <libpq-fe.h>

#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"
#include "pg_types.h"

namespace airlock::connectors::postgres {

// PostgreSQL's epoch (2000-01-01) relative to the Unix epoch.
inline constexpr int32_t kPgEpochDays = 10957;
inline constexpr int64_t kPgEpochMicros = int64_t{kPgEpochDays} * 86400 * 1000000;

// Appends every row of `result` (binary format, one column per entry of
// `decode`) to `builder`, whose fields match. Internal when a wire value has
// an unexpected size (the server and the plan disagree).
Status AppendRows(const PGresult* result, const std::vector<Kind>& decode,
                  arrow::RecordBatchBuilder& builder);

}  // namespace airlock::connectors::postgres
