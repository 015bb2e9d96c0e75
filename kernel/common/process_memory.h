// The calling process's resident memory, from /proc/self/statm.
#pragma once

#include <cstdint>

namespace airlock {

// Bytes of this process resident in memory now; 0 when /proc cannot tell.
int64_t ResidentMemoryBytes();

}  // namespace airlock
