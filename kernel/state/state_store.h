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
  // Only requests whose requester's tenant (RequesterTenant) equals this; ""
  // matches requests without a tenant.
  std::optional<std::string> tenant;
  // Records per page: 1..kMaxListLimit (larger values are clamped; 0 is
  // InvalidArgument).
  size_t limit = 50;
  // Empty for the first page, else a next_page_token from a previous List
  // with the same filter. Opaque; a malformed token is InvalidArgument.
  std::string page_token;
};

inline constexpr size_t kMaxListLimit = 1000;

// The tenant a request belongs to: its requester document's "tenant" when
// that is a string, else "" (no tenant). What RequestFilter::tenant matches.
std::string RequesterTenant(const nlohmann::json& requester);
// Longest replica id and API URL a heartbeat may carry.
inline constexpr size_t kMaxReplicaIdBytes = 128;
inline constexpr size_t kMaxReplicaUrlBytes = 1024;
// Longest request id a store accepts.
inline constexpr size_t kMaxRequestIdBytes = 256;
// Longest agent name an agent link may carry, and most agents one replica
// may say it holds.
inline constexpr size_t kMaxAgentNameBytes = 63;
inline constexpr size_t kMaxAgentLinksPerReplica = 10000;
// The longest reason a site suspension keeps.
inline constexpr size_t kMaxSuspensionReasonBytes = 1024;
// The largest site catalog a store keeps (1000 datasets of rich metadata).
inline constexpr size_t kMaxSiteCatalogBytes = 16 << 20;

// Longest notification id (its idempotency key), payload and error an
// outbox message may carry.
inline constexpr size_t kMaxOutboxIdBytes = 512;
inline constexpr size_t kMaxOutboxNotifierBytes = 128;
inline constexpr size_t kMaxOutboxPayloadBytes = 256 * 1024;
inline constexpr size_t kMaxOutboxErrorBytes = 1024;
// Most messages one ClaimOutbox hands out.
inline constexpr size_t kMaxOutboxClaim = 1000;

// Where a notification is on its way to its notifier (kernel/notify/).
enum class OutboxStatus { kPending, kDelivered, kAbandoned };

// "pending", "delivered", "abandoned".
const char* OutboxStatusName(OutboxStatus status);

// One notification for one notifier: the transactional outbox. Queued in
// the same transaction as the request change it tells of, so that a change
// that happened is told and one that did not is not, whatever crashes.
struct OutboxMessage {
  // The idempotency key: unique across notifiers, the same on every attempt.
  std::string id;
  std::string notifier;    // the notifier instance name
  std::string request_id;  // the request it tells of (may be empty)
  std::string payload;     // the notification, a JSON object as text
  OutboxStatus status = OutboxStatus::kPending;
  int64_t created_at_us = 0;
  int64_t next_attempt_at_us = 0;  // not to be tried before this
  int64_t attempts = 0;            // deliveries tried so far
  std::string last_error;          // why the last try failed (no secrets)
  int64_t settled_at_us = 0;       // when delivered or abandoned; 0 while pending
};

// How a claimed delivery ended (StateStore::SettleOutbox).
enum class OutboxOutcome {
  kDelivered,  // the receiver accepted it
  kRetry,      // not this time: try again at next_attempt_at_us
  kAbandoned,  // refused for good, or out of attempts
};

struct OutboxCounts {
  int64_t pending = 0;
  int64_t delivered = 0;
  int64_t abandoned = 0;
};

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

// A site (an agent and the enclaves its host runs) an admin suspended: its
// datasets are refused until it is resumed. Kept in the store so that every
// replica, and every restart, enforces it.
struct SiteSuspension {
  std::string agent;
  std::string reason;  // the admin's words, shown to whoever is refused
  std::string by;      // the admin's subject
  int64_t since_us = 0;
};

// The metadata of the datasets a site owns, as its agent last sent it
// (kernel/core/site_catalog.h): a JSON array, validated before it is stored.
// Kept so that every replica, and a restarted kernel, knows the datasets.
struct StoredSiteCatalog {
  std::string agent;
  std::string datasets_json;
  int64_t received_at_us = 0;
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
  Status Save(const RequestRecord& record) { return SaveWithOutbox(record, {}); }

  // Save, and in the same transaction queue `outbox` (status pending, as
  // given otherwise): the record and its messages are durable together or
  // not at all (a Conflict queues nothing). A message whose id is already
  // queued (in any status) is left as it is. InvalidArgument, before
  // anything is stored, for a message with an empty or oversized id,
  // notifier or payload.
  virtual Status SaveWithOutbox(const RequestRecord& record,
                                const std::vector<OutboxMessage>& outbox) = 0;

  // --- the notification outbox (kernel/notify/) ----------------------------

  // Queues messages that go with no request change (a window about to end).
  // Ids already queued, in any status, are left as they are; so queueing
  // the same message again after a restart sends it once. Same
  // InvalidArgument as SaveWithOutbox.
  virtual Status EnqueueOutbox(const std::vector<OutboxMessage>& messages) = 0;

  // Up to `limit` (1..kMaxOutboxClaim) pending messages of `notifier` due by
  // `now_us` (next_attempt_at_us <= now_us) and under no running claim
  // (anyone's, the claimer's own included), in order of next_attempt_at_us, then
  // created_at_us, then id. Each is claimed by `claimer` until now_us +
  // lease_us: no other claimer gets it meanwhile (on PostgreSQL, across
  // replicas). A claim that runs out makes the message claimable again (its
  // claimer died); it is then delivered again, under the same id.
  virtual Result<std::vector<OutboxMessage>> ClaimOutbox(std::string_view notifier,
                                                         std::string_view claimer, int64_t now_us,
                                                         int64_t lease_us, size_t limit) = 0;

  // Records how the claimed delivery of message `id` ended: attempts goes
  // up by one and last_error becomes `error` (truncated to
  // kMaxOutboxErrorBytes); kDelivered and kAbandoned settle it (status,
  // settled_at_us = now_us); kRetry leaves it pending, due at
  // next_attempt_at_us, unclaimed. False, changing nothing, when `claimer`
  // no longer holds the claim (it ran out and someone else took it) or the
  // message is not pending.
  virtual Result<bool> SettleOutbox(std::string_view id, std::string_view claimer,
                                    OutboxOutcome outcome, int64_t next_attempt_at_us,
                                    std::string_view error, int64_t now_us) = 0;

  // Ends every claim `claimer` holds, so its pending messages can be
  // claimed at once; returns how many. A kernel calls it as it starts: the
  // claims its earlier run left (it died delivering) are dead, and waiting
  // for them to run out would hold those messages back for a claim lease.
  virtual Result<size_t> ReleaseOutboxClaims(std::string_view claimer) = 0;

  // The message with this id, or nullopt.
  virtual Result<std::optional<OutboxMessage>> LoadOutbox(std::string_view id) = 0;

  // Messages by status; for one notifier, or for all when `notifier` is empty.
  virtual Result<OutboxCounts> CountOutbox(std::string_view notifier) = 0;

  // Deletes delivered and abandoned messages settled before `before_us`;
  // returns how many. Pending messages are never purged.
  virtual Result<size_t> PurgeOutbox(int64_t before_us) = 0;

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

  // Records `suspension`. False (the earlier one kept) when the agent is
  // already suspended. InvalidArgument when ValidateSiteSuspension refuses it.
  virtual Result<bool> SuspendSite(const SiteSuspension& suspension) = 0;
  // Lifts `agent`'s suspension; false when it was not suspended.
  virtual Result<bool> ResumeSite(std::string_view agent) = 0;
  // Every suspended site, by agent name.
  virtual Result<std::vector<SiteSuspension>> ListSiteSuspensions() = 0;

  // Records what `catalog.agent`'s site owns now, replacing what it said
  // before unless that is newer (received later). InvalidArgument for an
  // empty or oversized agent name or a document over kMaxSiteCatalogBytes.
  virtual Status RecordSiteCatalog(const StoredSiteCatalog& catalog) = 0;
  // Every site's, by agent name.
  virtual Result<std::vector<StoredSiteCatalog>> ListSiteCatalogs() = 0;
};

// The checks every backend makes on a suspension before it stores it.
Status ValidateSiteSuspension(const SiteSuspension& suspension);
// The checks every backend makes on a site catalog before it stores it.
Status ValidateSiteCatalog(const StoredSiteCatalog& catalog);

// The checks every backend makes on a heartbeat before it stores it.
Status ValidateHeartbeat(const ReplicaHeartbeat& beat);
// The checks every backend makes on RecordAgentLinks' arguments.
Status ValidateAgentLinks(std::string_view replica_id, const std::vector<std::string>& held,
                          const std::vector<std::string>& claimed);
// The checks every backend makes on outbox messages before it stores any.
Status ValidateOutbox(const std::vector<OutboxMessage>& messages);
// The FailedPrecondition a renewal of a lease no longer held gets.
Status LeaseLost(std::string_view replica_id, int64_t lease_epoch);

}  // namespace airlock
