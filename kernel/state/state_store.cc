#include "kernel/state/state_store.h"

#include <set>

namespace airlock {

std::string RequesterTenant(const nlohmann::json& requester) {
  if (!requester.is_object()) return std::string();
  const auto it = requester.find("tenant");
  return it != requester.end() && it->is_string() ? it->get<std::string>() : std::string();
}

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

Status ValidateAgentLinks(std::string_view replica_id, const std::vector<std::string>& held,
                          const std::vector<std::string>& claimed) {
  if (replica_id.empty() || replica_id.size() > kMaxReplicaIdBytes) {
    return Status::InvalidArgument("replica id must be 1 to " + std::to_string(kMaxReplicaIdBytes) +
                                   " bytes");
  }
  if (held.size() > kMaxAgentLinksPerReplica) {
    return Status::InvalidArgument("a replica holds at most " +
                                   std::to_string(kMaxAgentLinksPerReplica) + " agent links");
  }
  for (const std::string& agent : held) {
    if (agent.empty() || agent.size() > kMaxAgentNameBytes) {
      return Status::InvalidArgument("agent names are 1 to " + std::to_string(kMaxAgentNameBytes) +
                                     " bytes");
    }
  }
  const std::set<std::string> held_set(held.begin(), held.end());
  for (const std::string& agent : claimed) {
    if (held_set.count(agent) == 0) {
      return Status::InvalidArgument("agent '" + agent + "' is claimed but not held");
    }
  }
  return Status::Ok();
}

Status ValidateSiteSuspension(const SiteSuspension& suspension) {
  if (suspension.agent.empty() || suspension.agent.size() > kMaxAgentNameBytes) {
    return Status::InvalidArgument("agent names are 1 to " + std::to_string(kMaxAgentNameBytes) +
                                   " bytes");
  }
  if (suspension.reason.empty() || suspension.reason.size() > kMaxSuspensionReasonBytes) {
    return Status::InvalidArgument("a suspension's reason is 1 to " +
                                   std::to_string(kMaxSuspensionReasonBytes) + " bytes");
  }
  if (suspension.by.empty() || suspension.by.size() > kMaxSuspensionReasonBytes) {
    return Status::InvalidArgument("a suspension names who suspended the site");
  }
  for (std::string_view text :
       {std::string_view(suspension.agent), std::string_view(suspension.reason),
        std::string_view(suspension.by)}) {
    if (text.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument("a suspension's texts may not hold NUL characters");
    }
  }
  return Status::Ok();
}

Status ValidateSiteCatalog(const StoredSiteCatalog& catalog) {
  if (catalog.agent.empty() || catalog.agent.size() > kMaxAgentNameBytes) {
    return Status::InvalidArgument("agent names are 1 to " + std::to_string(kMaxAgentNameBytes) +
                                   " bytes");
  }
  if (catalog.datasets_json.size() > kMaxSiteCatalogBytes ||
      catalog.datasets_json.find('\0') != std::string::npos) {
    return Status::InvalidArgument("a site catalog is text of at most " +
                                   std::to_string(kMaxSiteCatalogBytes) + " bytes");
  }
  return Status::Ok();
}

const char* OutboxStatusName(OutboxStatus status) {
  switch (status) {
    case OutboxStatus::kPending:
      return "pending";
    case OutboxStatus::kDelivered:
      return "delivered";
    case OutboxStatus::kAbandoned:
      return "abandoned";
  }
  return "pending";
}

Status ValidateOutbox(const std::vector<OutboxMessage>& messages) {
  for (const OutboxMessage& m : messages) {
    if (m.id.empty() || m.id.size() > kMaxOutboxIdBytes) {
      return Status::InvalidArgument("outbox message ids are 1 to " +
                                     std::to_string(kMaxOutboxIdBytes) + " bytes");
    }
    if (m.notifier.empty() || m.notifier.size() > kMaxOutboxNotifierBytes) {
      return Status::InvalidArgument("outbox message " + m.id + ": notifier names are 1 to " +
                                     std::to_string(kMaxOutboxNotifierBytes) + " bytes");
    }
    if (m.request_id.size() > kMaxRequestIdBytes) {
      return Status::InvalidArgument("outbox message " + m.id + ": request id longer than " +
                                     std::to_string(kMaxRequestIdBytes) + " bytes");
    }
    if (m.payload.empty() || m.payload.size() > kMaxOutboxPayloadBytes) {
      return Status::InvalidArgument("outbox message " + m.id + ": payload must be 1 to " +
                                     std::to_string(kMaxOutboxPayloadBytes) + " bytes");
    }
  }
  return Status::Ok();
}

Status LeaseLost(std::string_view replica_id, int64_t lease_epoch) {
  return Status::FailedPrecondition("replica " + std::string(replica_id) +
                                    " no longer holds lease " + std::to_string(lease_epoch) +
                                    ": another replica fenced it and took its requests over");
}

}  // namespace airlock
