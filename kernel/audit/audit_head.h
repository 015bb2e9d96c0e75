// What every audit backend exposes to checkpoints: its durable head, and a
// hook that reports each advance of it.
#pragma once

#include <cstdint>
#include <string>

namespace airlock {

// The head of an audit trail: its last durable record's seq (0: no record)
// and chain hash (64 zeros for seq 0).
struct AuditHead {
  uint64_t seq = 0;
  std::string hash;
};

// Told by a backend each time records up to `seq` became durable. Called on
// the committing thread right after its flush: implementations must return
// at once (no I/O, no waiting).
class AuditDurableListener {
 public:
  virtual ~AuditDurableListener() = default;
  virtual void OnDurable(uint64_t seq) = 0;
};

}  // namespace airlock
