#include "kernel/state/state_store.h"

namespace airlock {

Status ValidateHeartbeat(const ReplicaHeartbeat& beat) {
  if (beat.replica_id.empty() || beat.replica_id.size() > kMaxReplicaIdBytes) {
    return Status::InvalidArgument("replica id must be 1 to " + std::to_string(kMaxReplicaIdBytes) +
                                   " bytes");
  }
  if (beat.api_url.size() > kMaxReplicaUrlBytes || beat.version.size() > kMaxReplicaUrlBytes) {
    return Status::InvalidArgument("replica API URL or version longer than " +
                                   std::to_string(kMaxReplicaUrlBytes) + " bytes");
  }
  return Status::Ok();
}

Status LeaseLost(std::string_view replica_id, int64_t lease_epoch) {
  return Status::FailedPrecondition("replica " + std::string(replica_id) +
                                    " no longer holds lease " + std::to_string(lease_epoch) +
                                    ": another replica fenced it and took its requests over");
}

}  // namespace airlock
