// The state store: durable home of every request record (RequestRecord).
// An abstract interface so that backends can differ (SQLite on local disk,
// PostgreSQL for several kernel replicas); the kernel depends only on this.
//
// Thread-safety: every method of every backend may be called concurrently
// from any thread. Implementations must make Save durable before returning
// and are expected to commit concurrent Saves in groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/lifecycle/request_record.h"

namespace airlock {

struct RequestFilter {
  std::optional<RequestState> state;
  std::optional<std::string> requester_subject;
  // Records per page: 1..kMaxListLimit (larger values are clamped; 0 is
  // InvalidArgument).
  size_t limit = 50;
  // Empty for the first page, else a next_page_token from a previous List
  // with the same filter. Opaque; a malformed token is InvalidArgument.
  std::string page_token;
};

inline constexpr size_t kMaxListLimit = 1000;
// Longest replica id and API URL a heartbeat may carry.
inline constexpr size_t kMaxReplicaIdBytes = 128;
inline constexpr size_t kMaxReplicaUrlBytes = 1024;
// Longest request id a store accepts.
inline constexpr size_t kMaxRequestIdBytes = 256;
// Longest agent name an agent link may carry, and most agents one replica
// may say it holds.
inline constexpr size_t kMaxAgentNameBytes = 63;
inline constexpr size_t kMaxAgentLinksPerReplica = 10000;

struct RequestPage {
  std::vector<RequestRecord> records;
  // Empty when this is the last page.
  std::string next_page_token;
};

// A stored record whose six JSON documents stay the text the store keeps:
// the compact serialisation Save writes (nlohmann dump(): keys sorted, no
// whitespace), byte-identical to serialising the parsed document again. For
// readers that only pass the documents on (GET /v1/requests/{id}).
struct StoredRequestText {
  std::string id;
  RequestState state = RequestState::kSubmitted;
  int64_t version = 0;
  std::string requester_subject;  // RequestRecord::requester_subject()
  std::string requester, request, decision, approvals, enclave, tunnel;
  std::string reason;
  int64_t created_at_us = 0;
  int64_t updated_at_us = 0;
  int64_t deadline_us = 0;
};

// What a kernel replica says about itself each time it beats.
struct ReplicaHeartbeat {
  std::string replica_id;  // the kernel's instance id: 1..kMaxReplicaIdBytes
  std::string version;     // the airlockd release
  std::string api_url;     // where its HTTP API listens, as others reach it
  int64_t started_at_us = 0;
  // The lease this beat renews: what AcquireLease returned (0 before).
  int64_t lease_epoch = 0;
};

// A replica as the store last heard from it. Times are the store's clock
// (PostgreSQL's, shared by every replica), so ages compare across machines.
struct ReplicaStatus {
  std::string replica_id;
  std::string version;
  std::string api_url;
  int64_t started_at_us = 0;
  int64_t last_heartbeat_us = 0;
  int64_t now_us = 0;  // the store's clock when it answered
  // Bumped each time the replica starts and each time another replica
  // fences it: only the holder of the current epoch may renew.
  int64_t lease_epoch = 0;
};

// Which replica holds an agent's link (kernel/agent/): the replica that
// runs that agent's enclaves. Times are the store's clock.
struct AgentLink {
  std::string agent;
  std::string replica_id;
  int64_t linked_at_us = 0;  // when replica_id last claimed it
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Inserts (record.version must be 1 and the id new) or updates
  // (record.version must be the stored version + 1); anything else is
  // Conflict and stores nothing. created_at_us is fixed by the insert; an
  // update leaves it as stored. Durable when it returns Ok. Errors:
  // InvalidArgument (empty/oversized id, version < 1, unserializable JSON),
  // Conflict, Unavailable (storage failure or store shutting down).
  virtual Status Save(const RequestRecord& record) = 0;

  // The stored record, or nullopt when no request has this id.
  virtual Result<std::optional<RequestRecord>> Load(std::string_view id) = 0;

  // The stored record as text, or null when no request has this id. The
  // snapshot is immutable and may be shared with other readers. This default
  // loads and serialises; a backend that keeps the text overrides it to skip
  // parsing.
  virtual Result<std::shared_ptr<const StoredRequestText>> LoadText(std::string_view id) {
    AIRLOCK_ASSIGN_OR_RETURN(std::optional<RequestRecord> record, Load(id));
    if (!record) return std::shared_ptr<const StoredRequestText>();
    auto text = std::make_shared<StoredRequestText>();
    text->id = record->id;
    text->state = record->state;
    text->version = record->version;
    text->requester_subject = record->requester_subject();
    text->requester = record->requester.dump();
    text->request = record->request.dump();
    text->decision = record->decision.dump();
    text->approvals = record->approvals.dump();
    text->enclave = record->enclave.dump();
    text->tunnel = record->tunnel.dump();
    text->reason = record->reason;
    text->created_at_us = record->created_at_us;
    text->updated_at_us = record->updated_at_us;
    text->deadline_us = record->deadline_us;
    return std::shared_ptr<const StoredRequestText>(std::move(text));
  }

  // Records matching `filter`, newest first (created_at_us, then id, both
  // descending). Paging is keyset-based, so records created while paging
  // never shift later pages: no duplicates, no gaps.
  virtual Result<RequestPage> List(const RequestFilter& filter) = 0;

  // Every request in a non-terminal state (what a restarting kernel must
  // resume or clean up), oldest first.
  virtual Result<std::vector<RequestRecord>> LoadActive() = 0;

  // Starts `beat.replica_id`'s lease (its first beat, or its first since a
  // restart): records the beat and returns an epoch above any the replica
  // held before, so that an earlier incarnation still running on the old
  // epoch can no longer renew. InvalidArgument as RecordHeartbeat.
  virtual Result<int64_t> AcquireLease(const ReplicaHeartbeat& beat) = 0;

  // Renews `beat.replica_id`'s lease: records that it is alive now (the
  // store's clock), with its version and address. FailedPrecondition when
  // beat.lease_epoch is no longer the replica's epoch (another replica
  // fenced it, or it started again elsewhere): the caller has lost its
  // requests and must stop acting on them. Any other failure means this
  // replica cannot reach its state: it is not ready. InvalidArgument for an
  // empty or oversized id or URL.
  virtual Status RecordHeartbeat(const ReplicaHeartbeat& beat) = 0;

  // Fences `replica_id` if it still holds `lease_epoch` and has not beaten
  // for at least `stale_after_us` (the store's clock): its epoch moves on,
  // so it can never renew that lease again. True for the one caller that
  // fenced it, which then takes over its requests; false when the replica
  // beat since, or someone else fenced it first.
  virtual Result<bool> FenceReplica(std::string_view replica_id, int64_t lease_epoch,
                                    int64_t stale_after_us) = 0;

  // Gives the lease up (a replica stopping cleanly): it reads as stale at
  // once, so that a survivor takes over without waiting for it to age.
  virtual Status ReleaseLease(std::string_view replica_id, int64_t lease_epoch) = 0;

  // Every replica that ever beat on this store, by id.
  virtual Result<std::vector<ReplicaStatus>> ListReplicas() = 0;

  // What `replica_id` says of its agent links now: it holds `held` (every
  // agent linked with it), of which `claimed` linked since it last said so.
  // Each claimed agent becomes this replica's, whoever held it before (the
  // agent left that one); a held agent no replica holds becomes this one's;
  // this replica's other agents are dropped. A held agent another replica
  // claimed since stays that replica's. InvalidArgument for an empty or
  // oversized id or name, more than kMaxAgentLinksPerReplica agents, or a
  // claimed agent that is not held.
  virtual Status RecordAgentLinks(std::string_view replica_id, const std::vector<std::string>& held,
                                  const std::vector<std::string>& claimed) = 0;

  // Every agent link, by agent name.
  virtual Result<std::vector<AgentLink>> ListAgentLinks() = 0;
};

// The checks every backend makes on a heartbeat before it stores it.
Status ValidateHeartbeat(const ReplicaHeartbeat& beat);
// The checks every backend makes on RecordAgentLinks' arguments.
Status ValidateAgentLinks(std::string_view replica_id, const std::vector<std::string>& held,
                          const std::vector<std::string>& claimed);
// The FailedPrecondition a renewal of a lease no longer held gets.
Status LeaseLost(std::string_view replica_id, int64_t lease_epoch);

}  // namespace airlock
