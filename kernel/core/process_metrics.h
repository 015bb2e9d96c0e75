// Gauges read when /metrics is scraped: the process's resident memory and
// open descriptors (Prometheus's standard process_* names), the heap the
// program holds (what the allocator handed out and has not got back), and
// SQLite's own memory (state store and audit caches). Side by side they
// tell a growing RSS apart: the program's data, SQLite's caches, or what the
// allocator keeps.
#pragma once

#include "kernel/core/metrics.h"

namespace airlock {

// Sets the gauges in `metrics` to their values now.
void RefreshProcessGauges(Metrics& metrics);

}  // namespace airlock
