// The memory live enclaves report to the kernel (a "memory" field in their
// sealed state, and a "memory" state every few seconds after).
#pragma once

#include <cstddef>
#include <cstdint>

namespace airlock {

// Summed over the enclaves that have reported.
struct EnclaveMemory {
  int64_t data_bytes = 0;      // their in-memory data (the databases' pages)
  int64_t resident_bytes = 0;  // resident memory of those in processes of their own
  size_t reporting = 0;        // enclaves that have reported
};

}  // namespace airlock
