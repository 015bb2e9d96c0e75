// The request lifecycle engine: validates asks, consults policy, records
// approvals, provisions enclaves through the isolator, opens tunnels and tears
// everything down at window end, on revoke and on shutdown.
//
// Every transition is persisted to the state store and written to the audit
// log before the caller is answered. Transitions of one request are
// serialised; enclave events are handled on a per-request strand.
// Thread-safety: all public methods may be called concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/audit/audit_search.h"
#include "kernel/core/config.h"
#include "kernel/core/enclave_memory.h"
#include "kernel/core/event_hub.h"
#include "kernel/core/remote_enclaves.h"
#include "kernel/core/site_catalog.h"
#include "kernel/lifecycle/request_record.h"
#include "kernel/state/state_store.h"

namespace airlock {

class AuditLog;
class ForwardedEndpoints;
class PeerClient;
class StateStore;
namespace plugin_host {
class PolicyPlugin;
class IsolatorPlugin;
class TunnelPlugin;
}  // namespace plugin_host
class Metrics;

// What the API shows of a request (never a credential).
nlohmann::json RequestToJson(const RequestRecord& record, const nlohmann::json& live_progress);
// The same, moving the record's documents into the view.
nlohmann::json RequestToJson(RequestRecord&& record, const nlohmann::json& live_progress);

struct RequestListQuery {
  std::optional<RequestState> state;
  bool mine = false;
  // Only what waits for the caller's decision: pending requests, and ready
  // ones whose window's extension waits, that the caller may approve and
  // has not yet (never their own). Oldest first; no paging.
  bool awaiting_me = false;
  size_t limit = 50;
  std::string page_token;
};

// A job result to send: a pinned link to a file of the kernel's (so that
// retention cannot delete it mid-answer), or a temporary copy fetched from
// the replica that ran the job. Temporary names are removed once opened.
struct JobResultFile {
  std::string path;
  bool temporary = false;
};

class RequestManager {
 public:
  struct Dependencies {
    const KernelConfig* config = nullptr;
    StateStore* store = nullptr;
    AuditLog* audit = nullptr;
    const plugin_host::PolicyPlugin* policy = nullptr;
    // Tenants' own policies (tenants.<t>.policy), by tenant; a tenant not
    // here is decided by `policy`.
    std::map<std::string, const plugin_host::PolicyPlugin*> tenant_policies;
    const plugin_host::IsolatorPlugin* isolator = nullptr;
    const plugin_host::TunnelPlugin* tunnel = nullptr;
    Metrics* metrics = nullptr;
    // Agents' hosts, for requests whose datasets are bound to an agent; null
    // when no agents are configured.
    RemoteEnclaveHost* remote = nullptr;
    // The datasets sites own (site_catalog.h); null when no agents are
    // configured.
    SiteCatalog* sites = nullptr;
    // Where each durable transition is announced (GET /v1/events); may be
    // null.
    EventHub* events = nullptr;
    // Notifications (kernel/notify/): what to queue with each transition,
    // in the same save, and whom to wake once it is queued. Both empty:
    // nothing is told.
    struct Notifications {
      std::function<std::vector<OutboxMessage>(const RequestRecord& record, RequestState from,
                                               const std::optional<std::string>& actor)>
          compose;
      // The same for what happens to a request without a change of state
      // (its window extended, ...): `event` names it.
      std::function<std::vector<OutboxMessage>(const RequestRecord& record,
                                               const std::string& event,
                                               const std::optional<std::string>& actor)>
          compose_event;
      std::function<void()> queued;
    };
    Notifications notifications;
    // Wall clock in microseconds; replaceable in tests.
    std::function<int64_t()> now_us;
    // Set when several replicas share the store (PostgreSQL). Each active
    // request is then owned by one replica (enclave.owner), which runs its
    // timers and its enclave; the others leave it alone until its owner's
    // lease lapses, when one of them fences the owner and takes over.
    struct Replication {
      std::string replica_id;
      // True while this replica holds its lease (may act on its requests).
      std::function<bool()> lease_held;
      // True while this replica may fence others (its own beats were all
      // stored for a lease TTL); empty: whenever it holds its lease.
      std::function<bool()> may_fence;
      // A replica whose heartbeat is this old (store clock) is taken over.
      int64_t lease_ttl_us = 3000000;
      // How often the store is scanned: requests ended or moved by other
      // replicas, deadlines nobody ran, replicas to take over.
      int64_t scan_interval_us = 1000000;
      // The link to the other replicas (state.peer). With it, a credential
      // asked of this replica for a request another one serves is taken
      // from that one, and `forwarded` serves such requests' tunnel queries
      // here. Null: those calls are answered with where the request is
      // served.
      const PeerClient* peer = nullptr;
      ForwardedEndpoints* forwarded = nullptr;
    };
    std::optional<Replication> replication;
  };

  explicit RequestManager(Dependencies deps);
  ~RequestManager();
  RequestManager(const RequestManager&) = delete;
  RequestManager& operator=(const RequestManager&) = delete;

  // Reconciles what a previous kernel left: reaps orphan enclaves, keeps
  // pending requests, resumes approved ones, closes or fails the ones whose
  // enclave did not survive. Call once, before Start().
  Status Recover();
  // Starts the expiry scheduler.
  void Start();
  // Closes every active request (enclaves destroyed, tunnels revoked) and
  // stops background work. Idempotent.
  void Shutdown();
  // This replica lost its lease: another one took its requests over. Drops
  // every local enclave and tunnel at once, writing nothing.
  void AbandonAll();
  // The peer link's owner side: another replica's tunnel query of request
  // `id`, run and audited here (NotFound when its enclave is not here).
  Status PeerQuery(const std::string& id, std::string_view sql, const std::string& transport,
                   const std::string& via, sdk::BatchConsumer& out);
  Result<nlohmann::json> PeerTables(const std::string& id);
  // Request `id` ended on another replica: its enclave here goes now, its
  // tunnel's users told `cause`. Conflict unless the shared state says it
  // ended.
  Status PeerEnd(const std::string& id, airlock_type_close_reason cause);
  // Request `id` was handed to this replica (its agent links here): its
  // enclave is launched now. Conflict unless the shared state says it is
  // approved and served here.
  Status PeerLaunch(const std::string& id);
  // The tunnel grant of request `id`, for `subject` (who must be its
  // requester), collected through replica `via`.
  Result<nlohmann::json> PeerCredentials(const std::string& id, const std::string& subject,
                                         const std::string& via);
  // A pinned link to job result `index` of request `id`, whose job ran here,
  // for the replica a requester downloads it through (which audits it); the
  // caller removes the link once it has opened it.
  Result<std::string> PeerJobResultPath(const std::string& id, size_t index);
  // One pass of what Start() runs every scan interval when replicated
  // (exposed for tests): tears down local enclaves of requests that ended
  // or moved elsewhere, runs overdue deadlines, fences and takes over
  // replicas whose lease lapsed, records which agents link here, hands
  // requests for other replicas' agents to them, and launches approved
  // requests handed here.
  void ReconcileReplicas();

  Result<nlohmann::json> Create(const Principal& requester, const nlohmann::json& body);
  // `catalog` ({"datasets":[...]}) with each dataset's "for_me": what the
  // policy would answer `caller` asking for it alone (default window, no
  // purpose): {"effect","reason","rule","obligations"?,"approval"?,
  // "max_window_seconds"?,"purpose_min_length"?}. Records nothing.
  Result<nlohmann::json> PreviewCatalog(const Principal& caller, nlohmann::json catalog);
  // `caller` named dataset `name` and was told there is none such: when it
  // is another tenant's, the probe is audited (tenant.probe_refused).
  void NoteUnknownDataset(const Principal& caller, const std::string& name);
  Result<nlohmann::json> Get(const Principal& caller, const std::string& id);
  // Get's answer already serialised (compact, the bytes of Get(...)->dump()),
  // rendered from the stored text without parsing it again.
  // `audit_probes`: a request of another tenant is audited as a probe
  // (tenant.probe_refused), a durable commit; false on an I/O thread and for
  // watchers, who name no request themselves.
  Result<std::string> GetText(const Principal& caller, const std::string& id,
                              bool audit_probes = true);
  Result<nlohmann::json> List(const Principal& caller, const RequestListQuery& query);
  Result<nlohmann::json> Approve(const Principal& approver, const std::string& id,
                                 const std::string& comment);
  Result<nlohmann::json> Deny(const Principal& approver, const std::string& id,
                              const std::string& comment);
  Result<nlohmann::json> Revoke(const Principal& caller, const std::string& id,
                                const std::string& comment);
  // Asks for more time on a ready request's window ({"window_seconds": added,
  // "purpose"?}). The policy decides on the longer window as on a new ask:
  // granted at once, refused (PermissionDenied with its reason) or left
  // waiting for approval (then Approve / Deny decide on the extension). The
  // data stays as it is: no new pull.
  Result<nlohmann::json> Extend(const Principal& requester, const std::string& id,
                                const nlohmann::json& body);
  // A query of ready request `id` by its requester through the kernel itself
  // (the MCP endpoint names `transport` "mcp"): run in the request's enclave,
  // here or at the replica that serves it, and audited there as a tunnel
  // query.
  Status QueryAsRequester(const Principal& caller, const std::string& id, std::string_view sql,
                          const std::string& transport, sdk::BatchConsumer& out);
  // The tables of ready request `id`'s enclave ({"tables":[...]}), for its
  // requester.
  Result<nlohmann::json> TablesAsRequester(const Principal& caller, const std::string& id);
  // The tunnel credential of a ready request, to its requester, exactly once.
  Result<nlohmann::json> CollectCredentials(const Principal& caller, const std::string& id);
  // Job mode: the results of request `id` and how each ended, for its
  // requester: {"state":"pending|running|finished|expired|abandoned",
  // "results":[{"index","sql_sha256","rows","outcome","error"?,"href"?}]}.
  Result<nlohmann::json> JobResults(const Principal& caller, const std::string& id);
  // The file holding result `index` (NDJSON, job_results.h), audited as a
  // download. FailedPrecondition once expired; Conflict while not finished.
  // A job that ran on another replica is fetched from it over the peer link
  // into a temporary file.
  Result<JobResultFile> JobResultFileOf(const Principal& caller, const std::string& id,
                                        size_t index);
  // Audit records of one request, for its requester, reviewers and admins.
  Result<nlohmann::json> AuditTrail(const Principal& caller, const std::string& id, size_t limit);
  // Records across requests (audit_search.h), newest first: admins see
  // every record, others those of the requests they may see.
  // {"records":[...],"scanned":N,"next_page_token"?}.
  Result<nlohmann::json> SearchAudit(const Principal& caller, const AuditSearchQuery& query);

  // Suspends the site of agent `agent` (an admin's act, with a reason):
  // kept in the state store, audited (agent.suspended), and every request
  // whose enclave runs or would run there is closed at once with the reason
  // (its tunnel connections dropped, its enclave destroyed). From then on
  // asks for its datasets are refused (PermissionDenied, with the reason),
  // as is provisioning there. NotFound for an agent not configured;
  // Conflict when already suspended. {"agent","status":"suspended",
  // "suspension":{...},"closed_requests":[ids]}.
  Result<nlohmann::json> SuspendSite(const Principal& admin, const std::string& agent,
                                     const std::string& reason);
  // Lifts the suspension (audited, agent.resumed). Conflict when the site
  // is not suspended. {"agent","status":"resumed"}.
  Result<nlohmann::json> ResumeSite(const Principal& admin, const std::string& agent,
                                    const std::string& reason);
  // `catalog` with each agent-bound dataset's site and its status
  // (site_status.h), and GET /v1/agents' document with suspensions. When the
  // store cannot be read they are shown unmarked (asks are still refused:
  // the check at ask and at provisioning fails closed).
  nlohmann::json MarkCatalogSites(nlohmann::json catalog);
  nlohmann::json MarkSuspendedAgents(nlohmann::json agents);

  // The connectors describe this kernel's datasets in an enclave
  // (EnclaveSupervisor::DescribeDatasets); Unavailable without a supervisor.
  Result<nlohmann::json> DescribeDatasets(std::chrono::milliseconds timeout,
                                          const std::atomic<bool>* stop);

  // Number of enclaves currently alive (for metrics and tests).
  size_t active_enclaves() const;
  // The memory they last reported.
  EnclaveMemory enclave_memory() const;
  // Rendered request views kept for GET /v1/requests/{id} (bounded).
  size_t cached_views() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock
