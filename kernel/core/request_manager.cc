#include "kernel/core/request_manager.h"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "kernel/audit/audit_log.h"
#include "kernel/common/crypto.h"
#include "kernel/common/rfc3339.h"
#include "kernel/core/deadline_queue.h"
#include "kernel/core/enclave_supervisor.h"
#include "kernel/core/forwarded_endpoints.h"
#include "kernel/core/job_results.h"
#include "kernel/core/metrics.h"
#include "kernel/core/peer_client.h"
#include "kernel/core/request_view.h"
#include "kernel/core/request_view_cache.h"
#include "kernel/core/site_status.h"
#include "kernel/core/tenancy.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/state/state_store.h"

namespace airlock {

using nlohmann::json;

namespace {

constexpr int64_t kMicros = 1000000;
// Rendered views kept for GET /v1/requests/{id}: a few MiB at most.
constexpr size_t kViewCacheEntries = 4096;
// Matches the enclave's own bounds (kernel/enclave/enclave_spec.h, max_sql_bytes).
constexpr size_t kMaxJobQueries = 256;
constexpr size_t kMaxJobQueryBytes = 64 * 1024;
constexpr size_t kMaxAskedColumns = 1024;  // of one dataset
constexpr size_t kMaxPurposeBytes = 1024;
constexpr size_t kMaxCommentBytes = 1024;
// How far in the past a scheduled start may lie and still mean "now".
constexpr int64_t kNotBeforeSlackUs = 300 * kMicros;
// Tries of a decision whose save lost a race with another replica's.
constexpr int kMaxRaceAttempts = 8;
// How long a replica waits for another to take note that a request it
// serves ended (its scan catches up with a missed notice anyway).
constexpr std::chrono::milliseconds kPeerNoticeTimeout{2000};
// A forwarded job result download: up to max_job_result_bytes over the link.
constexpr std::chrono::milliseconds kPeerDownloadTimeout{600000};

json PrincipalRef(const Principal& p) {
  json ref = {
      {"subject", p.subject}, {"kind", PrincipalKindName(p.kind)}, {"provider", p.provider}};
  if (!p.tenant.empty()) ref["tenant"] = p.tenant;
  return ref;
}

bool InAnyGroup(const Principal& p, const std::vector<std::string>& groups) {
  return std::any_of(groups.begin(), groups.end(),
                     [&](const std::string& g) { return p.InGroup(g); });
}

// The replica that runs a request's timers and enclave (empty: the only one).
std::string OwnerOf(const RequestRecord& r) {
  return r.enclave.is_object() ? r.enclave.value("owner", std::string()) : std::string();
}

}  // namespace

json RequestToJson(const RequestRecord& r, const json& live_progress) {
  return RequestToJson(RequestRecord(r), live_progress);
}

json RequestToJson(RequestRecord&& r, const json& live_progress) {
  if (!live_progress.empty()) r.enclave["progress"] = live_progress;
  json view = json::object();
  view["id"] = std::move(r.id);
  view["state"] = RequestStateName(r.state);
  view["version"] = r.version;
  view["requester"] = std::move(r.requester);
  view["request"] = std::move(r.request);
  view["decision"] = std::move(r.decision);
  view["approvals"] = std::move(r.approvals);
  view["enclave"] = std::move(r.enclave);
  view["tunnel"] = std::move(r.tunnel);
  // The credential's verifier is for a survivor's tunnel, not for readers.
  if (view["tunnel"].is_object()) view["tunnel"].erase("verifier");
  view["reason"] = std::move(r.reason);
  view["created_at_us"] = r.created_at_us;
  view["updated_at_us"] = r.updated_at_us;
  view["deadline_us"] = r.deadline_us;
  return view;
}

class RequestManager::Impl {
 public:
  explicit Impl(Dependencies deps) : d_(std::move(deps)) {
    if (!d_.now_us) {
      d_.now_us = [] {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
    }
    EnclaveSupervisor::Dependencies sd;
    sd.config = d_.config;
    sd.audit = d_.audit;
    sd.isolator = d_.isolator;
    sd.tunnel = d_.tunnel;
    sd.metrics = d_.metrics;
    sd.now_us = d_.now_us;
    sd.remote = d_.remote;
    sd.sites = d_.sites;
    sd.site_open = [this](const std::string& agent) { return SiteOpen(agent); };
    if (d_.replication && d_.replication->lease_held) sd.may_serve = d_.replication->lease_held;
    if (d_.isolator != nullptr) {
      auto isolation = d_.isolator->DescribeIsolation();
      sd.egress_forwarded =
          isolation.ok() && isolation->is_object() && isolation->value("egress", "") == "forwarded";
    }
    sd.transition = [this](const std::string& id, RequestState from, RequestState to,
                           const std::string& reason,
                           const std::function<void(RequestRecord&)>& mutate) {
      return TransitionById(id, from, to, reason, json(), mutate);
    };
    supervisor_ = std::make_unique<EnclaveSupervisor>(std::move(sd));
  }

  ~Impl() { Shutdown(); }

  // --- lifecycle plumbing ----------------------------------------------------

  // Transitions of one request are serialised by its stripe, held across the
  // audit and state-store commits. Distinct requests that share a stripe wait
  // for each other's commits, so there are many more stripes than requests
  // normally in flight (a collision costs a whole commit round).
  std::mutex& StripeFor(const std::string& id) {
    return stripes_[std::hash<std::string>{}(id) % stripes_.size()];
  }

  Status AuditEvent(json event) { return d_.audit->Append(std::move(event)); }

  // The record at hand says its tenant, so the audit's tagger need not look
  // the request up (TenantAuditTagger).
  void TagTenant(const RequestRecord& record, json& event) const {
    if (tenancy_.enabled()) event["tenant"] = Tenancy::AuditValue(Tenancy::RequestTenant(record));
  }

  // Audits, then persists, a transition of `record` (caller holds its stripe).
  // `raced` (when given) is set when the save lost to another replica's
  // change of the same request: the caller may reload and decide again.
  Status Move(RequestRecord& record, RequestState to, const std::string& reason, json extra,
              const Principal* actor, bool* raced = nullptr) {
    if (!CanTransition(record.state, to)) {
      return Status::Conflict("request " + record.id + " is " +
                              std::string(RequestStateName(record.state)) + " and cannot become " +
                              std::string(RequestStateName(to)));
    }
    RequestRecord next = record;
    next.state = to;
    next.version = record.version + 1;
    next.reason = reason;
    next.updated_at_us = d_.now_us();
    json event = {{"event", "request." + std::string(RequestStateName(to))},
                  {"request_id", record.id},
                  {"from", RequestStateName(record.state)},
                  {"to", RequestStateName(to)},
                  {"version", next.version},
                  {"reason", reason}};
    if (actor != nullptr) event["actor"] = PrincipalRef(*actor);
    if (extra.is_object()) event.update(extra);
    TagTenant(record, event);
    // The audit record is durable before the state change is: an auditor
    // sees every transition that could have taken effect.
    AIRLOCK_RETURN_IF_ERROR(AuditEvent(std::move(event)));
    const auto notices = Notices(next, record.state, actor);
    const Status saved = d_.store->SaveWithOutbox(next, notices);
    if (!saved.ok()) {
      (void)AuditEvent({{"event", "request.transition_aborted"},
                        {"request_id", record.id},
                        {"to", RequestStateName(to)},
                        {"version", next.version},
                        {"reason", saved.message()}});
      if (raced != nullptr && saved.code() == StatusCode::kConflict) *raced = true;
      return saved;
    }
    record = std::move(next);
    CountTransition(to);
    Announce(record, "request." + std::string(RequestStateName(to)));
    if (!notices.empty()) NoticesQueued();
    return Status::Ok();
  }

  // The notifications that go with `next` having moved from `from`, queued
  // in the same save (the transactional outbox): none when nobody is told.
  std::vector<OutboxMessage> Notices(const RequestRecord& next, RequestState from,
                                     const Principal* actor) const {
    if (!d_.notifications.compose) return {};
    std::optional<std::string> who;
    if (actor != nullptr) who = actor->subject;
    return d_.notifications.compose(next, from, who);
  }

  void NoticesQueued() const {
    if (d_.notifications.queued) d_.notifications.queued();
  }

  // Tells the event hub (GET /v1/events) that `record` just changed.
  void Announce(const RequestRecord& record, std::string event) {
    if (d_.events == nullptr) return;
    d_.events->Publish(record.id, std::move(event), std::string(RequestStateName(record.state)),
                       record.version);
  }

  // Audits `event`, then persists `record` one version on in the same state
  // (caller holds its stripe). As with Move, a save that fails is followed
  // by "<event>_aborted" naming the same version, and `raced` is set when it
  // lost to another replica's change.
  Status SaveInPlace(RequestRecord& record, json event, bool* raced,
                     const Principal* notify_actor = nullptr) {
    RequestRecord next = record;
    next.version = record.version + 1;
    next.updated_at_us = d_.now_us();
    const std::string name = event.value("event", "");
    event["request_id"] = record.id;
    event["version"] = next.version;
    TagTenant(record, event);
    AIRLOCK_RETURN_IF_ERROR(AuditEvent(std::move(event)));
    std::vector<OutboxMessage> notices;
    if (d_.notifications.compose_event) {
      std::optional<std::string> who;
      if (notify_actor != nullptr) who = notify_actor->subject;
      notices = d_.notifications.compose_event(next, name, who);
    }
    const Status saved = d_.store->SaveWithOutbox(next, notices);
    if (!saved.ok()) {
      (void)AuditEvent({{"event", name + "_aborted"},
                        {"request_id", record.id},
                        {"version", next.version},
                        {"reason", saved.message()}});
      if (saved.code() == StatusCode::kConflict) *raced = true;
      return saved;
    }
    record = std::move(next);
    Announce(record, name);
    if (!notices.empty()) NoticesQueued();
    return Status::Ok();
  }

  void CountTransition(RequestState to) {
    if (!d_.metrics) return;
    d_.metrics
        ->Get("airlock_request_transitions_total", "Request state transitions", "counter",
              "state=\"" + std::string(RequestStateName(to)) + "\"")
        .Add();
  }

  // Runs `once` again while its save loses races with other replicas'
  // changes of the same request: each try reloads and decides afresh, so
  // that approvals made at once on several replicas all count.
  template <class Once>
  auto RetryingRaces(Once once) -> decltype(once(std::declval<bool*>())) {
    for (int attempt = 1;; ++attempt) {
      bool raced = false;
      auto result = once(&raced);
      if (!raced || attempt == kMaxRaceAttempts) return result;
    }
  }

  bool Replicated() const { return d_.replication.has_value(); }
  const std::string& Self() const {
    static const std::string kNone;
    return Replicated() ? d_.replication->replica_id : kNone;
  }
  // Whether this replica runs `r`'s timers and enclave.
  bool OwnedHere(const RequestRecord& r) const {
    if (!Replicated()) return true;
    const std::string owner = OwnerOf(r);
    return owner.empty() || owner == Self();
  }
  void ClaimOwnership(RequestRecord& r) const {
    if (Replicated()) r.enclave["owner"] = Self();
  }

  // The supervisor's transitions: only the owner's enclave may move its
  // request (a replica that was taken over finds the request moved on).
  Status TransitionById(const std::string& id, RequestState from, RequestState to,
                        const std::string& reason, json extra,
                        const std::function<void(RequestRecord&)>& mutate) {
    return RetryingRaces([&](bool* raced) -> Status {
      std::lock_guard lock(StripeFor(id));
      AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(id));
      if (!loaded) return Status::NotFound("request " + id + " does not exist");
      RequestRecord record = std::move(*loaded);
      if (!OwnedHere(record)) {
        return Status::Conflict("request " + id + " is now served by replica " + OwnerOf(record));
      }
      if (record.state != from) {
        return Status::Conflict("request " + id + " is " +
                                std::string(RequestStateName(record.state)) + ", not " +
                                std::string(RequestStateName(from)));
      }
      if (mutate) mutate(record);
      AIRLOCK_RETURN_IF_ERROR(Move(record, to, reason, extra, nullptr, raced));
      AfterTransition(record);
      return Status::Ok();
    });
  }

  // Side effects of entering a state (outside the store transaction).
  // `cause` tells a closed request's tunnel why it closes (a failed
  // request's tunnel hears AIRLOCK_CLOSE_FAILED whatever is passed).
  void AfterTransition(const RequestRecord& record,
                       airlock_type_close_reason cause = AIRLOCK_CLOSE_REVOKED) {
    switch (record.state) {
      case RequestState::kApproved:
        if (!OwnedHere(record)) {
          AskOwnerToLaunch(record);  // handed over to the replica its agent links with
        } else if (auto holder = AgentLinkedElsewhere(record)
                                     ? AgentHolderElsewhere(record, AgentHolders())
                                     : std::nullopt) {
          RequestRecord handed = record;
          bool raced = false;
          const Status moved = HandOverLocked(handed, *holder, &raced);
          if (!moved.ok()) {
            spdlog::warn("request {}: not handed over to replica {} now ({}); the next scan does",
                         record.id, holder->replica, moved.message());
          }
        } else {
          LaunchWhenDue(record);
        }
        break;
      case RequestState::kPendingApproval:
      case RequestState::kReady:
        Schedule(record.id, record.deadline_us);
        break;
      default:
        if (IsTerminal(record.state)) {
          Unschedule(record.id);
          if (Peer() != nullptr && !OwnedHere(record)) EndAtOwner(record, cause);
          supervisor_->Teardown(
              record.id, record.reason,
              record.state == RequestState::kFailed ? AIRLOCK_CLOSE_FAILED : cause);
          if (KeepsJobResults(record)) {
            Schedule(record.id, record.deadline_us);  // when they are deleted
          } else if (record.request.value("mode", "") == "job") {
            RemoveJobResults(d_.config->results_dir, record.id);  // unfinished: none kept
          }
        }
        break;
    }
  }

  // --- access checks ------------------------------------------------------

  // An admin of `r`: a platform admin, or an admin of its tenant.
  bool IsAdminOf(const Principal& p, const RequestRecord& r) const {
    return tenancy_.IsAdminOf(p, Tenancy::RequestTenant(r));
  }

  static std::vector<std::string> ApprovalGroups(const json& decision) {
    return decision.value("approval", json::object()).value("groups", std::vector<std::string>{});
  }

  // Who may decide on `r`: its decision's approvers, and while an extension
  // of its window waits, that extension's.
  bool IsEligibleApprover(const Principal& p, const RequestRecord& r) const {
    if (InAnyGroup(p, ApprovalGroups(r.decision))) return true;
    const json* extension = PendingExtension(r);
    return extension != nullptr &&
           InAnyGroup(p, ApprovalGroups(extension->value("decision", json::object())));
  }

  // The extension of `r`'s window that waits for approval, or null.
  static const json* PendingExtension(const RequestRecord& r) {
    auto it = r.request.find("extension");
    return it != r.request.end() && it->is_object() ? &*it : nullptr;
  }

  // Within a tenant: the requester, its admins, the reviewers and the
  // eligible approvers. Across tenants nobody but a platform admin.
  bool CanSee(const Principal& p, const RequestRecord& r) const {
    const std::string tenant = Tenancy::RequestTenant(r);
    if (!tenancy_.Reaches(p, tenant)) return false;
    return r.requester_subject() == p.subject || tenancy_.IsAdminOf(p, tenant) ||
           InAnyGroup(p, d_.config->reviewer_groups) || IsEligibleApprover(p, r);
  }

  // CanSee on the stored text: the decision document is parsed only when the
  // caller is neither the requester nor a reviewer or admin.
  bool CanSee(const Principal& p, const StoredRequestText& r) const {
    const std::string tenant =
        tenancy_.enabled() ? Tenancy::RequesterTenant(r.requester) : std::string();
    if (!tenancy_.Reaches(p, tenant)) return false;
    if (r.requester_subject == p.subject || tenancy_.IsAdminOf(p, tenant) ||
        InAnyGroup(p, d_.config->reviewer_groups)) {
      return true;
    }
    RequestRecord decided;
    decided.decision = json::parse(r.decision, nullptr, /*allow_exceptions=*/false);
    return decided.decision.is_object() && IsEligibleApprover(p, decided);
  }

  // A principal named an object of another tenant: answered as unknown, and
  // recorded for that tenant's admins (and the platform's) to see.
  void AuditProbe(const Principal& caller, const std::string& tenant, json what) {
    what["event"] = "tenant.probe_refused";
    what["tenant"] = Tenancy::AuditValue(tenant);
    what["principal"] = PrincipalRef(caller);
    (void)AuditEvent(std::move(what));
  }

  Result<RequestRecord> LoadVisible(const Principal& caller, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(id));
    // Unknown and invisible look the same: existence is not disclosed.
    if (!loaded || !CanSee(caller, *loaded)) {
      if (loaded && !tenancy_.Reaches(caller, Tenancy::RequestTenant(*loaded))) {
        AuditProbe(caller, Tenancy::RequestTenant(*loaded), {{"request_id", id}});
      }
      return Status::NotFound("request " + id + " not found");
    }
    return std::move(*loaded);
  }

  json View(const RequestRecord& r) { return View(RequestRecord(r)); }

  // The record's documents move into the view (a GET serves a freshly
  // loaded record: copying them would only add allocations).
  json View(RequestRecord&& r) {
    // A request whose enclave runs on an agent's host shows the agent's live
    // status (an offline agent is why its queries answer 503).
    std::optional<std::string> agent;
    if (d_.remote != nullptr && r.enclave.is_object()) {
      const auto it = r.enclave.find("agent");
      if (it != r.enclave.end() && it->is_string()) agent = it->get<std::string>();
    }
    const std::shared_ptr<const json> progress = supervisor_->Progress(r.id);
    json view = RequestToJson(std::move(r), *progress);
    if (agent) view["enclave"]["agent_status"] = d_.remote->AgentStatus(*agent);
    return view;
  }

  // --- create -------------------------------------------------------------

  Result<AccessRequest> ValidateAsk(const json& body) {
    if (!body.is_object()) return Status::InvalidArgument("request body must be a JSON object");
    static const std::set<std::string> kKnown = {"datasets", "window_seconds", "purpose", "mode",
                                                 "queries",  "not_before",     "columns"};
    for (const auto& [key, value] : body.items()) {
      if (!kKnown.count(key)) return Status::InvalidArgument("unknown field '" + key + "'");
      // The readers below take null for absent; in an ask it is a mistake
      // (e.g. a client's unset variable), not a request for the default.
      if (value.is_null()) {
        return Status::InvalidArgument("request." + key +
                                       " must not be null (omit it to use the default)");
      }
    }
    json fields = body;
    fields.erase("not_before");  // read below: the API takes RFC 3339 too
    AIRLOCK_ASSIGN_OR_RETURN(AccessRequest ask, AccessRequest::FromJson(fields));
    if (auto it = body.find("not_before"); it != body.end()) {
      AIRLOCK_ASSIGN_OR_RETURN(ask.not_before, ValidateNotBefore(*it));
    }
    if (ask.datasets.empty()) return Status::InvalidArgument("datasets must not be empty");
    if (static_cast<int64_t>(ask.datasets.size()) > d_.config->limits.max_datasets_per_request) {
      return Status::InvalidArgument("too many datasets in one request (max " +
                                     std::to_string(d_.config->limits.max_datasets_per_request) +
                                     ")");
    }
    std::set<std::string> unique(ask.datasets.begin(), ask.datasets.end());
    if (unique.size() != ask.datasets.size()) {
      return Status::InvalidArgument("datasets must not repeat");
    }
    if (!body.contains("window_seconds")) {
      ask.window_seconds = d_.config->limits.default_window_seconds;
    }
    if (ask.window_seconds < 1 || ask.window_seconds > d_.config->limits.max_window_seconds) {
      return Status::InvalidArgument("window_seconds must be between 1 and " +
                                     std::to_string(d_.config->limits.max_window_seconds));
    }
    if (ask.purpose.size() > kMaxPurposeBytes) {
      return Status::InvalidArgument("purpose is longer than 1024 bytes");
    }
    if (ask.mode == "interactive") {
      if (!ask.queries.empty()) {
        return Status::InvalidArgument("queries are only valid in job mode");
      }
    } else if (ask.mode == "job") {
      if (ask.queries.empty() || ask.queries.size() > kMaxJobQueries) {
        return Status::InvalidArgument("a job needs between 1 and " +
                                       std::to_string(kMaxJobQueries) + " queries");
      }
      for (const std::string& sql : ask.queries) {
        if (sql.empty() || sql.size() > kMaxJobQueryBytes) {
          return Status::InvalidArgument("each job query must be 1.." +
                                         std::to_string(kMaxJobQueryBytes) + " bytes");
        }
      }
    } else {
      return Status::InvalidArgument("mode must be \"interactive\" or \"job\"");
    }
    return ask;
  }

  // A scheduled start: an RFC 3339 timestamp or Unix seconds, no earlier
  // than a few minutes ago (clocks differ; such a start means "now", 0) and
  // no later than limits.max_schedule_ahead_seconds from now.
  Result<int64_t> ValidateNotBefore(const json& value) {
    std::optional<int64_t> at_us;
    if (value.is_string()) {
      at_us = ParseRfc3339Micros(value.get<std::string>());
    } else if (value.is_number_integer() && value.get<int64_t>() > 0 &&
               value.get<int64_t>() < (int64_t{1} << 40)) {
      at_us = value.get<int64_t>() * kMicros;
    }
    if (!at_us) {
      return Status::InvalidArgument(
          "not_before must be an RFC 3339 timestamp (e.g. 2026-12-06T09:30:00Z) or Unix seconds");
    }
    const int64_t now = d_.now_us();
    if (*at_us < now - kNotBeforeSlackUs) {
      return Status::InvalidArgument("not_before is in the past");
    }
    if (*at_us > now + d_.config->limits.max_schedule_ahead_seconds * kMicros) {
      return Status::InvalidArgument("not_before is more than " +
                                     std::to_string(d_.config->limits.max_schedule_ahead_seconds) +
                                     " seconds ahead (limits.max_schedule_ahead_seconds)");
    }
    if (*at_us <= now) return int64_t{0};
    return (*at_us + kMicros - 1) / kMicros;  // whole seconds, never before it
  }

  // A configured dataset, or one a site owns (as its site described it).
  std::optional<DatasetInfo> FindDataset(const std::string& name) const {
    for (const DatasetInfo& d : d_.config->datasets) {
      if (d.name == name) return d;
    }
    if (d_.sites != nullptr) {
      if (auto owned = d_.sites->Find(name)) return owned->info;
    }
    return std::nullopt;
  }

  // The policy that decides `principal`'s asks: its tenant's, else the
  // kernel's.
  const plugin_host::PolicyPlugin& PolicyFor(const Principal& principal) const {
    const auto it = d_.tenant_policies.find(principal.tenant);
    return it != d_.tenant_policies.end() && it->second != nullptr ? *it->second : *d_.policy;
  }

  // The tenant a dataset of the catalog belongs to: as configured, or its
  // site's ("" without tenants).
  std::string TenantOfDataset(const std::string& name) const {
    if (!tenancy_.enabled()) return {};
    if (auto it = d_.config->dataset_tenants.find(name); it != d_.config->dataset_tenants.end()) {
      return it->second;
    }
    if (d_.sites != nullptr) {
      if (auto owned = d_.sites->Find(name)) return tenancy_.AgentTenant(owned->agent);
    }
    return {};
  }

  void NoteUnknownDataset(const Principal& caller, const std::string& name) {
    if (!tenancy_.enabled() || !FindDataset(name)) return;
    const std::string tenant = TenantOfDataset(name);
    if (!tenancy_.Reaches(caller, tenant)) AuditProbe(caller, tenant, {{"dataset", name}});
  }

  // Catalog entries for the asked datasets; NotFound names the unknown ones.
  // Another tenant's dataset is unknown to `asker` (the probe is audited);
  // a request's datasets are all its requester's tenant's, even a platform
  // admin's.
  Result<std::vector<DatasetInfo>> ResolveDatasets(const AccessRequest& ask,
                                                   const Principal& asker) {
    std::vector<DatasetInfo> found;
    std::vector<std::string> unknown;
    for (const auto& name : ask.datasets) {
      auto info = FindDataset(name);
      if (info && tenancy_.enabled()) {
        const std::string tenant = TenantOfDataset(name);
        if (tenant != asker.tenant) {
          if (!tenancy_.Reaches(asker, tenant)) {
            AuditProbe(asker, tenant, {{"dataset", name}});
          } else {
            return Status::InvalidArgument("dataset '" + name + "' belongs to tenant '" + tenant +
                                           "'; a request is made by a member of its tenant");
          }
          info.reset();
        }
      }
      if (info) {
        found.push_back(std::move(*info));
      } else {
        unknown.push_back(name);
      }
    }
    if (!unknown.empty()) {
      std::string list;
      for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
      return Status::NotFound("unknown dataset(s): " + list);
    }
    return found;
  }

  // An ask may narrow a dataset to some of its columns: each one the
  // catalog lists for a dataset of the ask, none twice.
  Status CheckAskedColumns(const AccessRequest& ask, const std::vector<DatasetInfo>& datasets) {
    for (const auto& asked : ask.columns) {
      const std::string& name = asked.first;
      const std::vector<std::string>& columns = asked.second;
      auto info = std::find_if(datasets.begin(), datasets.end(),
                               [&](const DatasetInfo& d) { return d.name == name; });
      if (info == datasets.end()) {
        return Status::InvalidArgument("columns names dataset '" + name +
                                       "', which the ask does not include");
      }
      if (columns.empty() || columns.size() > kMaxAskedColumns) {
        return Status::InvalidArgument("columns of '" + name + "' must list between 1 and " +
                                       std::to_string(kMaxAskedColumns) + " columns");
      }
      if (info->columns.empty()) {
        return Status::InvalidArgument("the catalog lists no columns of '" + name +
                                       "': ask for the whole dataset");
      }
      std::set<std::string_view> seen;
      for (const std::string& column : columns) {
        if (!seen.insert(column).second) {
          return Status::InvalidArgument("column '" + column + "' of '" + name + "' repeats");
        }
        const bool listed = std::any_of(info->columns.begin(), info->columns.end(),
                                        [&](const ColumnInfo& c) { return c.name == column; });
        if (!listed) {
          return Status::InvalidArgument("dataset '" + name + "' has no column '" + column + "'");
        }
      }
    }
    return Status::Ok();
  }

  // Columns the ask names that the policy's obligations withhold are bad
  // input: the requester is told which, and nothing is recorded.
  static Status CheckColumnsGranted(const AccessRequest& ask, const Decision& decision) {
    for (const auto& [name, columns] : ask.columns) {
      auto scope = decision.obligations.find(name);
      if (scope == decision.obligations.end()) continue;
      for (const std::string& column : columns) {
        if (!scope->second.AllowsColumn(column)) {
          return Status::InvalidArgument("column '" + column + "' of '" + name +
                                         "' is withheld by the policy (" + decision.rule +
                                         "); ask without it");
        }
      }
    }
    return Status::Ok();
  }

  // A policy may require the ask to say why; one that does not is bad
  // input, refused before anything is audited or stored.
  static Status CheckPurposeLength(const AccessRequest& ask, const Decision& decision) {
    if (decision.purpose_min_length <= 0) return Status::Ok();
    const std::string_view purpose = TrimBlanks(ask.purpose);
    // Code points: every byte but UTF-8 continuation bytes.
    const auto length = std::count_if(purpose.begin(), purpose.end(), [](char c) {
      return (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    });
    if (length >= decision.purpose_min_length) return Status::Ok();
    return Status::InvalidArgument(
        "the policy (" + decision.rule +
        ") requires a purpose saying why you need the data, of at least " +
        std::to_string(decision.purpose_min_length) + " characters; this one has " +
        std::to_string(length));
  }

  static std::string_view TrimBlanks(std::string_view text) {
    constexpr std::string_view kBlanks = " \t\r\n";
    const size_t first = text.find_first_not_of(kBlanks);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(kBlanks) - first + 1);
  }

  Result<json> Create(const Principal& requester, const json& body) {
    AIRLOCK_ASSIGN_OR_RETURN(AccessRequest ask, ValidateAsk(body));
    AIRLOCK_ASSIGN_OR_RETURN(auto datasets, ResolveDatasets(ask, requester));
    AIRLOCK_RETURN_IF_ERROR(CheckAskedColumns(ask, datasets));
    // One enclave runs on one host: refuse asks that span agents up front,
    // and asks for a suspended site's datasets.
    AIRLOCK_ASSIGN_OR_RETURN(const std::string agent,
                             AgentForDatasets(*d_.config, d_.sites, ask.datasets));
    AIRLOCK_RETURN_IF_ERROR(SiteOpen(agent));
    const int64_t now = d_.now_us();
    RequestRecord record;
    record.id = "req_" + RandomHex(12);
    ask.id = record.id;
    record.state = RequestState::kSubmitted;
    record.requester = requester.ToJson();
    record.request = ask.ToJson();
    record.created_at_us = now;
    record.updated_at_us = now;
    ClaimOwnership(record);

    std::lock_guard lock(StripeFor(record.id));
    // submitted, evaluated and the decided state are audited as one group
    // (one fdatasync) once the policy has answered, before the request is
    // stored or answered: nothing is acknowledged that is not audited.
    std::vector<json> audit;
    audit.push_back({{"event", "request.submitted"},
                     {"request_id", record.id},
                     {"principal", PrincipalRef(requester)},
                     {"datasets", ask.datasets},
                     {"window_seconds", ask.window_seconds},
                     {"purpose", ask.purpose}});
    if (!ask.columns.empty()) audit.back()["columns"] = ask.columns;
    record.state = RequestState::kEvaluating;

    PolicyInput input;
    input.principal = requester;
    input.request = ask;
    input.datasets = std::move(datasets);
    input.now_unix_seconds = now / kMicros;
    const auto deciding = std::chrono::steady_clock::now();
    auto decided = PolicyFor(input.principal).Evaluate(input);
    if (d_.metrics) {
      d_.metrics
          ->GetHistogram("airlock_policy_decision_duration_seconds",
                         "Time the policy took to answer an ask", "", Metrics::LatencyBuckets())
          .ObserveSince(deciding);
      d_.metrics
          ->Get("airlock_policy_decisions_total", "Policy decisions", "counter",
                "effect=\"" + std::string(decided.ok() ? EffectName(decided->effect) : "error") +
                    "\"")
          .Add();
    }
    RequestState to = RequestState::kDenied;
    std::string reason;
    if (!decided.ok()) {
      // Fail closed: a policy backend that cannot answer denies.
      to = RequestState::kDenied;
      reason = "policy evaluation failed: " + decided.status().message();
      record.decision = {{"effect", "deny"}, {"reason", reason}, {"rule", ""}};
    } else {
      Decision decision = std::move(decided).value();
      if (decision.effect != Effect::kDeny) {
        AIRLOCK_RETURN_IF_ERROR(CheckPurposeLength(ask, decision));
        AIRLOCK_RETURN_IF_ERROR(CheckColumnsGranted(ask, decision));
      }
      record.decision = decision.ToJson();
      reason = decision.reason;
      switch (decision.effect) {
        case Effect::kDeny:
          to = RequestState::kDenied;
          break;
        case Effect::kNeedsApproval: {
          to = RequestState::kPendingApproval;
          int64_t wait = decision.approval.timeout_seconds > 0
                             ? decision.approval.timeout_seconds
                             : d_.config->limits.approval_timeout_seconds;
          wait = std::min(wait, d_.config->limits.approval_timeout_seconds);
          record.deadline_us = now + wait * kMicros;
          break;
        }
        case Effect::kAllow:
          to = RequestState::kApproved;
          break;
      }
      if (decision.max_window_seconds > 0 && ask.window_seconds > decision.max_window_seconds) {
        // The policy caps the window; the ask is narrowed, not refused.
        ask.window_seconds = decision.max_window_seconds;
        record.request["window_seconds"] = ask.window_seconds;
      }
      if (to == RequestState::kApproved) record.deadline_us = WindowEndUs(record, now);
    }
    json evaluated = {{"event", "request.evaluated"},
                      {"request_id", record.id},
                      {"principal", PrincipalRef(requester)},
                      {"effect", record.decision.value("effect", "deny")},
                      {"rule", record.decision.value("rule", "")},
                      {"reason", reason}};
    audit.push_back(std::move(evaluated));
    // The request is first persisted in its decided state: submitted and
    // evaluating are instants inside this call, recorded in the audit log.
    record.state = to;
    record.reason = reason;
    record.version = 1;
    audit.push_back({{"event", "request." + std::string(RequestStateName(to))},
                     {"request_id", record.id},
                     {"from", "evaluating"},
                     {"to", RequestStateName(to)},
                     {"version", record.version},
                     {"reason", reason}});
    if (tenancy_.enabled()) {
      for (json& event : audit) event["tenant"] = Tenancy::AuditValue(requester.tenant);
    }
    AIRLOCK_RETURN_IF_ERROR(d_.audit->AppendAll(std::move(audit)));
    const auto notices = Notices(record, RequestState::kEvaluating, &requester);
    AIRLOCK_RETURN_IF_ERROR(d_.store->SaveWithOutbox(record, notices));
    CountTransition(to);
    Announce(record, "request." + std::string(RequestStateName(to)));
    if (!notices.empty()) NoticesQueued();
    AfterTransition(record);
    return View(record);
  }

  // What the policy would answer `caller` for each dataset of `catalog` on
  // its own: an ask with the default window, interactive, without a purpose.
  // Nothing is recorded: no ask was made.
  Result<json> PreviewCatalog(const Principal& caller, json catalog) {
    auto datasets = catalog.find("datasets");
    if (datasets == catalog.end() || !datasets->is_array()) return catalog;
    for (json& entry : *datasets) {
      const std::string name = entry.value("name", "");
      auto info = FindDataset(name);
      if (!info) continue;
      PolicyInput input;
      input.principal = caller;
      input.request.datasets = {name};
      input.request.window_seconds = d_.config->limits.default_window_seconds;
      input.datasets = {*info};
      input.now_unix_seconds = d_.now_us() / kMicros;
      auto decided = PolicyFor(input.principal).Evaluate(input);
      if (!decided.ok()) {
        // Fail closed, as an ask would.
        entry["for_me"] = {{"effect", "deny"},
                           {"reason", "policy evaluation failed: " + decided.status().message()}};
        continue;
      }
      json preview = {{"effect", EffectName(decided->effect)},
                      {"reason", decided->reason},
                      {"rule", decided->rule}};
      if (decided->effect != Effect::kDeny) {
        auto scope = decided->obligations.find(name);
        preview["obligations"] =
            scope != decided->obligations.end() ? scope->second.ToJson() : DatasetScope{}.ToJson();
        if (decided->max_window_seconds > 0) {
          preview["max_window_seconds"] = decided->max_window_seconds;
        }
        if (decided->purpose_min_length > 0) {
          preview["purpose_min_length"] = decided->purpose_min_length;
        }
      }
      if (decided->effect == Effect::kNeedsApproval) {
        preview["approval"] = {{"groups", decided->approval.groups},
                               {"count", decided->approval.count}};
      }
      entry["for_me"] = std::move(preview);
    }
    return catalog;
  }

  // --- approve / deny / revoke ---------------------------------------------

  Status CheckApprover(const Principal& approver, const RequestRecord& r) {
    if (r.requester_subject() == approver.subject) {
      return Status::PermissionDenied("requester and approver must differ (no self-approval)");
    }
    if (!IsEligibleApprover(approver, r)) {
      return Status::PermissionDenied(approver.subject +
                                      " is not in an approver group for this request");
    }
    return Status::Ok();
  }

  // The pending request `id`, if `approver` may decide on it (caller holds
  // the request's stripe).
  Result<RequestRecord> LoadPendingFor(const Principal& approver, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(approver, id));
    if (r.state != RequestState::kPendingApproval) {
      return Status::Conflict("request " + id + " is " + std::string(RequestStateName(r.state)) +
                              ", not pending_approval");
    }
    AIRLOCK_RETURN_IF_ERROR(CheckApprover(approver, r));
    return r;
  }

  // Adds `approver`'s approval of `what` to `approvals`; how many there are
  // then. Conflict when they approved it already.
  Result<int64_t> AddApproval(json& approvals, const Principal& approver,
                              const std::string& comment, const std::string& what) {
    for (const auto& a : approvals) {
      if (a.value("subject", "") == approver.subject) {
        return Status::Conflict(approver.subject + " already approved " + what);
      }
    }
    approvals.push_back({{"subject", approver.subject},
                         {"kind", PrincipalKindName(approver.kind)},
                         {"at_us", d_.now_us()},
                         {"comment", comment}});
    return static_cast<int64_t>(approvals.size());
  }

  // An approval recorded while more are needed: persisted as a version
  // bump, audited as `event`.
  Status SaveApprovalRecorded(RequestRecord& r, const char* event, const Principal& approver,
                              int64_t have, int64_t needed, bool* raced) {
    return SaveInPlace(r,
                       {{"event", event},
                        {"actor", PrincipalRef(approver)},
                        {"approvals", have},
                        {"approvals_needed", needed}},
                       raced);
  }

  Result<json> Approve(const Principal& approver, const std::string& id,
                       const std::string& comment) {
    if (comment.size() > kMaxCommentBytes) return Status::InvalidArgument("comment too long");
    return RetryingRaces([&](bool* raced) { return ApproveOnce(approver, id, comment, raced); });
  }

  Result<json> ApproveOnce(const Principal& approver, const std::string& id,
                           const std::string& comment, bool* raced) {
    std::lock_guard lock(StripeFor(id));
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord pending, LoadVisible(approver, id));
    if (pending.state == RequestState::kReady && PendingExtension(pending) != nullptr) {
      return DecideExtension(approver, pending, true, comment, raced);
    }
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadPendingFor(approver, id));
    const int64_t now = d_.now_us();
    AIRLOCK_ASSIGN_OR_RETURN(const int64_t have,
                             AddApproval(r.approvals, approver, comment, "request " + id));
    const int64_t needed = r.decision.value("approval", json::object()).value("count", 1);
    json extra = {{"approvals", have}, {"approvals_needed", needed}};
    if (have < needed) {
      AIRLOCK_RETURN_IF_ERROR(
          SaveApprovalRecorded(r, "request.approval_recorded", approver, have, needed, raced));
      return View(r);
    }
    // The access window starts at approval (or at its scheduled start),
    // not at submission. The approving replica provisions the enclave, so
    // it owns the request.
    r.deadline_us = WindowEndUs(r, now);
    ClaimOwnership(r);
    AIRLOCK_RETURN_IF_ERROR(Move(r, RequestState::kApproved, "approved by " + approver.subject,
                                 extra, &approver, raced));
    AfterTransition(r);
    return View(r);
  }

  Result<json> Deny(const Principal& approver, const std::string& id, const std::string& comment) {
    if (comment.size() > kMaxCommentBytes) return Status::InvalidArgument("comment too long");
    return RetryingRaces([&](bool* raced) -> Result<json> {
      std::lock_guard lock(StripeFor(id));
      AIRLOCK_ASSIGN_OR_RETURN(RequestRecord pending, LoadVisible(approver, id));
      if (pending.state == RequestState::kReady && PendingExtension(pending) != nullptr) {
        return DecideExtension(approver, pending, false, comment, raced);
      }
      AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadPendingFor(approver, id));
      std::string reason = "denied by " + approver.subject;
      if (!comment.empty()) reason += ": " + comment;
      AIRLOCK_RETURN_IF_ERROR(Move(r, RequestState::kDenied, reason, json(), &approver, raced));
      AfterTransition(r);
      return View(r);
    });
  }

  Result<json> Revoke(const Principal& caller, const std::string& id, const std::string& comment) {
    if (comment.size() > kMaxCommentBytes) return Status::InvalidArgument("comment too long");
    return RetryingRaces(
        [&](bool* raced) -> Result<json> { return RevokeOnce(caller, id, comment, raced); });
  }

  Result<json> RevokeOnce(const Principal& caller, const std::string& id,
                          const std::string& comment, bool* raced) {
    std::lock_guard lock(StripeFor(id));
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(caller, id));
    const bool allowed = r.requester_subject() == caller.subject || IsAdminOf(caller, r) ||
                         IsEligibleApprover(caller, r);
    if (!allowed) {
      return Status::PermissionDenied(caller.subject + " may not revoke request " + id);
    }
    if (IsTerminal(r.state)) {
      return Status::Conflict("request " + id + " is already " +
                              std::string(RequestStateName(r.state)));
    }
    std::string reason = "revoked by " + caller.subject;
    if (!comment.empty()) reason += ": " + comment;
    AIRLOCK_RETURN_IF_ERROR(Move(r, RequestState::kClosed, reason, json(), &caller, raced));
    AfterTransition(r);
    return View(r);
  }

  // --- sites ---------------------------------------------------------------

  // Ok when agent `agent` ("" for this kernel's own isolator) may run
  // enclaves: PermissionDenied with the admin's reason while its site is
  // suspended; Unavailable when the store cannot tell (fail closed).
  Status SiteOpen(const std::string& agent) {
    if (agent.empty()) return Status::Ok();
    auto suspensions = d_.store->ListSiteSuspensions();
    if (!suspensions.ok()) {
      return Status::Unavailable("cannot tell whether site '" + agent +
                                 "' is suspended: " + suspensions.status().message());
    }
    if (const SiteSuspension* s = FindSuspension(*suspensions, agent)) {
      return Status::PermissionDenied(SuspendedMessage(*s));
    }
    return Status::Ok();
  }

  // Whether `admin` may suspend or resume `agent`'s site: a platform admin
  // or an admin of its tenant. Another tenant's site is unknown (audited).
  Status CheckSiteAct(const Principal& admin, const std::string& agent, const std::string& reason) {
    if (!d_.config->agents.enabled || d_.config->agents.agents.count(agent) == 0) {
      return Status::NotFound("no agent named '" + agent + "' is configured");
    }
    const std::string tenant = tenancy_.AgentTenant(agent);
    if (!tenancy_.Reaches(admin, tenant)) {
      AuditProbe(admin, tenant, {{"agent", agent}});
      return Status::NotFound("no agent named '" + agent + "' is configured");
    }
    if (!tenancy_.IsAdminOf(admin, tenant)) {
      return Status::PermissionDenied("only an admin of the site's tenant may do that");
    }
    if (reason.empty() || reason.size() > kMaxSuspensionReasonBytes) {
      return Status::InvalidArgument(
          "a reason of 1 to " + std::to_string(kMaxSuspensionReasonBytes) + " bytes is required");
    }
    return Status::Ok();
  }

  Result<json> SuspendSite(const Principal& admin, const std::string& agent,
                           const std::string& reason) {
    AIRLOCK_RETURN_IF_ERROR(CheckSiteAct(admin, agent, reason));
    const SiteSuspension suspension{agent, reason, admin.subject, d_.now_us()};
    AIRLOCK_ASSIGN_OR_RETURN(const bool stored, d_.store->SuspendSite(suspension));
    if (!stored) return Status::Conflict("site '" + agent + "' is already suspended");
    // Stored before it is audited: should the audit fail, the site is
    // closed without a record rather than open with one.
    AIRLOCK_RETURN_IF_ERROR(AuditEvent({{"event", "agent.suspended"},
                                        {"agent", agent},
                                        {"principal", PrincipalRef(admin)},
                                        {"reason", reason}}));
    spdlog::warn("site '{}' suspended by {}", agent, admin.subject);
    json closed = json::array();
    AIRLOCK_ASSIGN_OR_RETURN(const std::vector<RequestRecord> active, d_.store->LoadActive());
    const std::string why = SuspendedMessage(suspension);
    for (const RequestRecord& r : active) {
      auto bound = AgentForDatasets(*d_.config, d_.sites,
                                    r.request.value("datasets", std::vector<std::string>{}));
      if (!bound.ok() || *bound != agent) continue;
      bool ended = false;
      const Status outcome = RetryingRaces([&](bool* raced) -> Status {
        std::lock_guard lock(StripeFor(r.id));
        AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(r.id));
        if (!loaded || IsTerminal(loaded->state)) return Status::Ok();
        RequestRecord current = std::move(*loaded);
        AIRLOCK_RETURN_IF_ERROR(
            Move(current, RequestState::kClosed, why, {{"agent", agent}}, &admin, raced));
        AfterTransition(current);
        ended = true;
        return Status::Ok();
      });
      if (ended) closed.push_back(r.id);
      if (!outcome.ok()) {
        spdlog::warn("request {}: not closed with its suspended site: {}", r.id, outcome.message());
      }
    }
    return json{{"agent", agent},
                {"status", "suspended"},
                {"suspension", SuspensionJson(suspension)},
                {"closed_requests", std::move(closed)}};
  }

  Result<json> ResumeSite(const Principal& admin, const std::string& agent,
                          const std::string& reason) {
    AIRLOCK_RETURN_IF_ERROR(CheckSiteAct(admin, agent, reason));
    AIRLOCK_ASSIGN_OR_RETURN(const auto suspensions, d_.store->ListSiteSuspensions());
    if (FindSuspension(suspensions, agent) == nullptr) {
      return Status::Conflict("site '" + agent + "' is not suspended");
    }
    // Audited before it takes effect: nothing opens unrecorded.
    AIRLOCK_RETURN_IF_ERROR(AuditEvent({{"event", "agent.resumed"},
                                        {"agent", agent},
                                        {"principal", PrincipalRef(admin)},
                                        {"reason", reason}}));
    AIRLOCK_RETURN_IF_ERROR(d_.store->ResumeSite(agent).status());
    spdlog::info("site '{}' resumed by {}", agent, admin.subject);
    return json{{"agent", agent}, {"status", "resumed"}};
  }

  json MarkCatalogSites(json catalog) {
    if (d_.remote == nullptr || !d_.config->agents.enabled) return catalog;
    if (d_.sites != nullptr && catalog.contains("datasets") && catalog["datasets"].is_array()) {
      for (const SiteDataset& owned : d_.sites->All()) {
        catalog["datasets"].push_back(owned.ToCatalogJson());
      }
    }
    auto suspensions = d_.store->ListSiteSuspensions();
    return ::airlock::MarkCatalogSites(
        *d_.config, std::move(catalog), d_.remote,
        suspensions.ok() ? *suspensions : std::vector<SiteSuspension>{});
  }

  json MarkSuspendedAgents(json agents) {
    auto suspensions = d_.store->ListSiteSuspensions();
    if (!suspensions.ok()) return agents;
    return ::airlock::MarkSuspendedAgents(std::move(agents), *suspensions);
  }

  // --- extending a window ---------------------------------------------------

  Result<json> Extend(const Principal& requester, const std::string& id, const json& body) {
    if (!body.is_object()) return Status::InvalidArgument("the body must be a JSON object");
    for (const auto& [key, value] : body.items()) {
      if (key != "window_seconds" && key != "purpose") {
        return Status::InvalidArgument("unknown field '" + key +
                                       "' (an extension has window_seconds and purpose)");
      }
    }
    const auto seconds = body.find("window_seconds");
    if (seconds == body.end() || !seconds->is_number_integer() || seconds->get<int64_t>() < 1 ||
        seconds->get<int64_t>() > d_.config->limits.max_window_seconds) {
      return Status::InvalidArgument(
          "window_seconds (the time to add) must be an integer between 1 and " +
          std::to_string(d_.config->limits.max_window_seconds));
    }
    std::optional<std::string> purpose;
    if (auto it = body.find("purpose"); it != body.end()) {
      if (!it->is_string()) return Status::InvalidArgument("purpose must be a string");
      if (it->get_ref<const std::string&>().size() > kMaxPurposeBytes) {
        return Status::InvalidArgument("purpose is longer than 1024 bytes");
      }
      purpose = it->get<std::string>();
    }
    const int64_t added = seconds->get<int64_t>();
    return RetryingRaces([&](bool* raced) -> Result<json> {
      return ExtendOnce(requester, id, added, purpose, raced);
    });
  }

  Result<json> ExtendOnce(const Principal& requester, const std::string& id, int64_t added_seconds,
                          const std::optional<std::string>& purpose, bool* raced) {
    std::lock_guard lock(StripeFor(id));
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(requester, id));
    if (r.requester_subject() != requester.subject) {
      return Status::PermissionDenied("only the requester may extend request " + id);
    }
    if (r.state != RequestState::kReady ||
        r.request.value("mode", "interactive") != "interactive") {
      return Status::Conflict("request " + id + " is " + std::string(RequestStateName(r.state)) +
                              "; only a ready request's window can be extended");
    }
    if (PendingExtension(r) != nullptr) {
      return Status::Conflict("an extension of request " + id + " already waits for approval");
    }
    if (d_.tunnel == nullptr || !d_.tunnel->ExtendsWindows()) {
      return Status::NotImplemented("the tunnel plugin cannot extend a window; ask anew");
    }
    const int64_t now = d_.now_us();
    const int64_t start = WindowStartUs(r);
    int64_t window_end = std::min(r.deadline_us + added_seconds * kMicros,
                                  start + d_.config->limits.max_window_seconds * kMicros);
    if (window_end <= r.deadline_us) {
      return Status::InvalidArgument("request " + id + " already has the longest window (" +
                                     std::to_string(d_.config->limits.max_window_seconds) +
                                     " s, limits.max_window_seconds)");
    }

    // The policy decides on the whole, longer window as on a new ask.
    AIRLOCK_ASSIGN_OR_RETURN(AccessRequest ask, AccessRequest::FromJson(r.request));
    ask.window_seconds = (window_end - start + kMicros - 1) / kMicros;
    if (purpose) ask.purpose = *purpose;
    AIRLOCK_ASSIGN_OR_RETURN(auto datasets, ResolveDatasets(ask, requester));
    PolicyInput input;
    input.principal = requester;
    input.request = ask;
    input.datasets = std::move(datasets);
    input.now_unix_seconds = now / kMicros;
    auto decided = PolicyFor(input.principal).Evaluate(input);
    if (!decided.ok()) {
      return RefuseExtension(r, requester,
                             "policy evaluation failed: " + decided.status().message());
    }
    const Decision decision = std::move(decided).value();
    if (decision.effect == Effect::kDeny) return RefuseExtension(r, requester, decision.reason);
    AIRLOCK_RETURN_IF_ERROR(CheckPurposeLength(ask, decision));
    // The enclave holds the data as the first decision scoped it; a policy
    // that now scopes it otherwise needs a new ask (and a new pull).
    if (decision.ToJson()["obligations"] != r.decision.value("obligations", json::object())) {
      return Status::Conflict("the policy now scopes the data of request " + id + " differently (" +
                              decision.rule + "); ask anew to have it pulled as it now allows");
    }
    if (decision.max_window_seconds > 0) {
      window_end = std::min(window_end, start + decision.max_window_seconds * kMicros);
      if (window_end <= r.deadline_us) {
        return RefuseExtension(r, requester,
                               "the policy allows a window of at most " +
                                   std::to_string(decision.max_window_seconds) + " s (" +
                                   decision.rule + "), which request " + id + " already has");
      }
    }
    const int64_t granted_seconds = (window_end - r.deadline_us + kMicros - 1) / kMicros;
    if (decision.effect == Effect::kAllow) {
      AIRLOCK_RETURN_IF_ERROR(GrantExtension(r, window_end, decision.rule, &requester, raced));
      return View(r);
    }
    r.request["extension"] = {{"window_end_us", window_end},   {"added_seconds", granted_seconds},
                              {"purpose", ask.purpose},        {"requested_at_us", now},
                              {"decision", decision.ToJson()}, {"approvals", json::array()}};
    AIRLOCK_RETURN_IF_ERROR(SaveInPlace(r,
                                        {{"event", "request.extension_requested"},
                                         {"principal", PrincipalRef(requester)},
                                         {"added_seconds", granted_seconds},
                                         {"purpose", ask.purpose},
                                         {"rule", decision.rule},
                                         {"reason", decision.reason}},
                                        raced, &requester));
    return View(r);
  }

  // A refused extension: audited, the request unchanged.
  Status RefuseExtension(const RequestRecord& r, const Principal& requester,
                         const std::string& reason) {
    AIRLOCK_RETURN_IF_ERROR(AuditEvent({{"event", "request.extension_denied"},
                                        {"request_id", r.id},
                                        {"principal", PrincipalRef(requester)},
                                        {"reason", reason}}));
    return Status::PermissionDenied("the window of request " + r.id +
                                    " cannot be extended: " + reason);
  }

  // An approver's decision on the extension waiting on `r` (caller holds
  // its stripe).
  Result<json> DecideExtension(const Principal& approver, RequestRecord& r, bool approve,
                               const std::string& comment, bool* raced) {
    json& extension = r.request["extension"];
    const json decision = extension.value("decision", json::object());
    if (r.requester_subject() == approver.subject) {
      return Status::PermissionDenied("requester and approver must differ (no self-approval)");
    }
    if (!InAnyGroup(approver, ApprovalGroups(decision))) {
      return Status::PermissionDenied(approver.subject +
                                      " is not in an approver group for this extension");
    }
    if (!approve) {
      std::string reason = "denied by " + approver.subject;
      if (!comment.empty()) reason += ": " + comment;
      r.request.erase("extension");
      AIRLOCK_RETURN_IF_ERROR(SaveInPlace(r,
                                          {{"event", "request.extension_denied"},
                                           {"actor", PrincipalRef(approver)},
                                           {"reason", reason}},
                                          raced, &approver));
      return View(r);
    }
    json& approvals = extension["approvals"];
    if (!approvals.is_array()) approvals = json::array();
    AIRLOCK_ASSIGN_OR_RETURN(const int64_t have, AddApproval(approvals, approver, comment,
                                                             "the extension of request " + r.id));
    const int64_t needed = decision.value("approval", json::object()).value("count", 1);
    if (have < needed) {
      AIRLOCK_RETURN_IF_ERROR(SaveApprovalRecorded(r, "request.extension_approval_recorded",
                                                   approver, have, needed, raced));
      return View(r);
    }
    const int64_t window_end = extension.value("window_end_us", int64_t{0});
    if (window_end <= r.deadline_us) {
      return Status::Conflict("the extension of request " + r.id + " no longer adds time");
    }
    AIRLOCK_RETURN_IF_ERROR(
        GrantExtension(r, window_end, decision.value("rule", ""), &approver, raced));
    return View(r);
  }

  // Moves `r`'s window end to `window_end` (caller holds its stripe), then
  // the tunnel's: the record first, so that the tunnel never serves time
  // that is not on record. A replica that does not serve the request tells
  // nobody: the owner moves its tunnel when the old end comes (Expire).
  Status GrantExtension(RequestRecord& r, int64_t window_end, const std::string& rule,
                        const Principal* actor, bool* raced) {
    const int64_t from = r.deadline_us;
    const int64_t start = WindowStartUs(r);
    r.deadline_us = window_end;
    r.request.erase("extension");
    r.request["window_seconds"] = (window_end - start + kMicros - 1) / kMicros;
    r.request["extended_seconds"] = r.request.value("extended_seconds", int64_t{0}) +
                                    (window_end - from + kMicros - 1) / kMicros;
    if (r.tunnel.is_object() && r.tunnel.contains("expires_at")) {
      r.tunnel["expires_at"] = window_end / kMicros;
    }
    json event = {{"event", "request.extended"},
                  {"from_deadline_us", from},
                  {"to_deadline_us", window_end},
                  {"rule", rule}};
    if (actor != nullptr) event["actor"] = PrincipalRef(*actor);
    AIRLOCK_RETURN_IF_ERROR(SaveInPlace(r, std::move(event), raced, actor));
    Schedule(r.id, window_end);
    if (OwnedHere(r)) FollowWindow(r);
    return Status::Ok();
  }

  // Brings the tunnel endpoint of `r` (served here) to its recorded window.
  void FollowWindow(const RequestRecord& r) {
    const Status moved = supervisor_->ExtendWindow(r.id, r.deadline_us);
    if (!moved.ok() && moved.code() != StatusCode::kNotFound) {
      spdlog::error("request {}: the tunnel keeps its old window end: {}", r.id, moved.ToString());
    }
  }

  Result<json> CollectCredentials(const Principal& caller, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(caller, id));
    if (r.requester_subject() != caller.subject) {
      return Status::PermissionDenied("only the requester may collect the tunnel credential");
    }
    if (r.state != RequestState::kReady) {
      return Status::Conflict("request " + id + " is " + std::string(RequestStateName(r.state)) +
                              ", not ready");
    }
    // The credential exists only in the tunnel of the replica serving the
    // request: it is collected there, through the peer link when there is
    // one, and this replica's tunnel then accepts it too.
    if (!OwnedHere(r)) {
      if (Peer() == nullptr) return ServedElsewhere(r, "collect its credential there");
      AIRLOCK_ASSIGN_OR_RETURN(const std::string owner_url, LiveReplicaUrl(OwnerOf(r)));
      AIRLOCK_ASSIGN_OR_RETURN(json grant,
                               Peer()->TakeGrant(owner_url, id, caller.subject, PeerTimeout()));
      if (AuditsQueryText(r)) grant["audit_query_text"] = true;
      if (auto target = ForwardTarget(r, OwnerOf(r), owner_url)) {
        const Status opened = d_.replication->forwarded->Ensure(*target);
        if (!opened.ok()) spdlog::warn("request {}: {}", id, opened.message());
      }
      return grant;
    }
    auto grant = supervisor_->TakeGrant(id);
    if (!grant.ok()) return grant.status();
    // The requester is told when what they read is kept in the audit.
    if (AuditsQueryText(r)) (*grant)["audit_query_text"] = true;
    AIRLOCK_RETURN_IF_ERROR(AuditEvent({{"event", "tunnel.credential_issued"},
                                        {"request_id", id},
                                        {"principal", PrincipalRef(caller)}}));
    return grant;
  }

  Result<RequestRecord> LoadOwnReady(const Principal& caller, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(caller, id));
    if (r.requester_subject() != caller.subject) {
      return Status::PermissionDenied("only the requester may query request " + id);
    }
    if (r.request.value("mode", "") == "job") {
      return Status::FailedPrecondition("request " + id +
                                        " is a job: its queries were fixed when it was asked");
    }
    if (r.state != RequestState::kReady) {
      return Status::Conflict("request " + id + " is " + std::string(RequestStateName(r.state)) +
                              ", not ready");
    }
    return r;
  }

  Status QueryAsRequester(const Principal& caller, const std::string& id, std::string_view sql,
                          const std::string& transport, sdk::BatchConsumer& out) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadOwnReady(caller, id));
    if (OwnedHere(r)) return supervisor_->QueryForPeer(id, sql, transport, "", out);
    if (Peer() == nullptr) return ServedElsewhere(r, "query it there");
    AIRLOCK_ASSIGN_OR_RETURN(const std::string owner_url, LiveReplicaUrl(OwnerOf(r)));
    return Peer()->Query(owner_url, id, sql, transport, out, PeerTimeout());
  }

  Result<json> TablesAsRequester(const Principal& caller, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadOwnReady(caller, id));
    if (OwnedHere(r)) return supervisor_->TablesForPeer(id);
    if (Peer() == nullptr) return ServedElsewhere(r, "list its tables there");
    AIRLOCK_ASSIGN_OR_RETURN(const std::string owner_url, LiveReplicaUrl(OwnerOf(r)));
    return Peer()->Tables(owner_url, id, PeerTimeout());
  }

  // --- the peer link ---------------------------------------------------------

  const PeerClient* Peer() const {
    return Replicated() && d_.replication->forwarded != nullptr ? d_.replication->peer : nullptr;
  }

  std::chrono::milliseconds PeerTimeout() const {
    return std::chrono::milliseconds(d_.config->limits.query_timeout_ms);
  }

  // The API URL of replica `id` while its lease holds.
  Result<std::string> LiveReplicaUrl(const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(std::vector<ReplicaStatus> replicas, d_.store->ListReplicas());
    for (const ReplicaStatus& replica : replicas) {
      if (replica.replica_id != id) continue;
      if (replica.now_us - replica.last_heartbeat_us >= d_.replication->lease_ttl_us) break;
      if (replica.api_url.empty()) break;
      return replica.api_url;
    }
    return Status::Unavailable("replica " + id +
                               " serving the request is not reachable now; a survivor takes its "
                               "requests over once its lease lapses");
  }

  // What this replica's tunnel needs to serve `r` for its owner; none when
  // `r` is not ready or its credential cannot be verified here.
  std::optional<ForwardedEndpoints::Target> ForwardTarget(const RequestRecord& r,
                                                          const std::string& owner,
                                                          const std::string& owner_url) const {
    if (r.state != RequestState::kReady || !r.tunnel.is_object()) return std::nullopt;
    const std::string verifier = r.tunnel.value("verifier", "");
    auto requester = Principal::FromJson(r.requester);
    if (verifier.empty() || !requester.ok()) return std::nullopt;
    ForwardedEndpoints::Target target;
    target.request_id = r.id;
    target.requester = std::move(requester).value();
    target.not_after_us = r.deadline_us;
    target.verifier = verifier;
    target.owner = owner;
    target.owner_url = owner_url;
    return target;
  }

  // Keeps this replica's forwarding endpoints in step with the shared state:
  // one for each ready request a live replica serves, none for the others.
  void SyncForwarded(const std::vector<RequestRecord>& active,
                     const std::vector<ReplicaStatus>& replicas) {
    if (Peer() == nullptr) return;
    std::map<std::string, std::string> live_urls;
    for (const ReplicaStatus& replica : replicas) {
      if (replica.replica_id == Self() || replica.api_url.empty()) continue;
      if (replica.now_us - replica.last_heartbeat_us >= d_.replication->lease_ttl_us) continue;
      live_urls[replica.replica_id] = replica.api_url;
    }
    std::vector<ForwardedEndpoints::Target> targets;
    for (const RequestRecord& r : active) {
      const std::string owner = OwnerOf(r);
      auto url = live_urls.find(owner);
      if (OwnedHere(r) || url == live_urls.end()) continue;
      if (auto target = ForwardTarget(r, owner, url->second)) targets.push_back(std::move(*target));
    }
    for (const std::string& id : d_.replication->forwarded->Sync(targets)) {
      d_.replication->forwarded->Close(id, CloseCauseOf(id));
    }
  }

  // What a forwarding endpoint's users are told when it closes.
  airlock_type_close_reason CloseCauseOf(const std::string& id) {
    auto loaded = d_.store->Load(id);
    if (!loaded.ok() || !*loaded) return AIRLOCK_CLOSE_REVOKED;
    const RequestRecord& r = **loaded;
    if (r.state == RequestState::kFailed) return AIRLOCK_CLOSE_FAILED;
    if (r.state == RequestState::kClosed && r.deadline_us > 0 && r.deadline_us <= d_.now_us()) {
      return AIRLOCK_CLOSE_WINDOW_ENDED;
    }
    // Still active: its owner is provisioning it again (a takeover).
    if (!IsTerminal(r.state)) return AIRLOCK_CLOSE_FAILED;
    return AIRLOCK_CLOSE_REVOKED;
  }

  // A request that ended here while another replica serves it: that
  // replica tears its enclave down now rather than at its next scan. If it
  // cannot be told, its scan still does within one interval.
  void EndAtOwner(const RequestRecord& r, airlock_type_close_reason cause) {
    const airlock_type_close_reason told =
        r.state == RequestState::kFailed ? AIRLOCK_CLOSE_FAILED : cause;
    d_.replication->forwarded->Close(r.id, told);
    const std::string owner = OwnerOf(r);
    if (owner.empty()) return;
    auto url = LiveReplicaUrl(owner);
    Status told_owner = url.status();
    if (url.ok()) {
      const json body = {{"cause", static_cast<int>(told)}};
      auto answer = Peer()->Call(*url, "POST", "/v1/peer/requests/" + r.id + "/end", body.dump(),
                                 kPeerNoticeTimeout);
      told_owner = !answer.ok()            ? answer.status()
                   : answer->status == 200 ? Status::Ok()
                                           : StatusFromPeerAnswer(*answer, "replica " + owner);
    }
    if (!told_owner.ok()) {
      spdlog::warn("request {} ended here; its replica tears it down at its next scan: {}", r.id,
                   told_owner.message());
    }
  }

  // The peer link's notice that request `id` ended on another replica.
  Status PeerEnd(const std::string& id, airlock_type_close_reason cause) {
    AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(id));
    if (!loaded) return Status::NotFound("no such request");
    // The shared state decides, not the caller: only an ended request goes.
    if (!IsTerminal(loaded->state)) {
      return Status::Conflict("request " + id + " is " +
                              std::string(RequestStateName(loaded->state)) + ", not ended");
    }
    supervisor_->Teardown(id, loaded->reason,
                          loaded->state == RequestState::kFailed ? AIRLOCK_CLOSE_FAILED : cause);
    return Status::Ok();
  }

  Status PeerQuery(const std::string& id, std::string_view sql, const std::string& transport,
                   const std::string& via, sdk::BatchConsumer& out) {
    return supervisor_->QueryForPeer(id, sql, transport, via, out);
  }

  Result<json> PeerTables(const std::string& id) { return supervisor_->TablesForPeer(id); }

  Result<json> PeerCredentials(const std::string& id, const std::string& subject,
                               const std::string& via) {
    AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(id));
    if (!loaded) return Status::NotFound("no such request");
    const RequestRecord& r = *loaded;
    if (r.requester_subject() != subject) {
      return Status::PermissionDenied("only the requester may collect the tunnel credential");
    }
    if (r.state != RequestState::kReady || !OwnedHere(r)) {
      return Status::Conflict("request " + id + " is not ready on this replica");
    }
    auto grant = supervisor_->TakeGrant(id);
    if (!grant.ok()) return grant.status();
    // The requester is told when what they read is kept in the audit.
    if (AuditsQueryText(r)) (*grant)["audit_query_text"] = true;
    AIRLOCK_RETURN_IF_ERROR(AuditEvent({{"event", "tunnel.credential_issued"},
                                        {"request_id", id},
                                        {"principal", r.requester},
                                        {"via_replica", via}}));
    return grant;
  }

  // --- job results --------------------------------------------------------

  static bool KeepsJobResults(const RequestRecord& r) {
    return r.state == RequestState::kClosed &&
           r.enclave.value("job", json::object()).value("state", "") == "finished";
  }

  Result<RequestRecord> LoadOwnJob(const Principal& caller, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(caller, id));
    if (r.requester_subject() != caller.subject) {
      return Status::PermissionDenied("only the requester may read job results");
    }
    if (r.request.value("mode", "") != "job") {
      return Status::NotFound("request " + id + " is not a job: it has no results");
    }
    return r;
  }

  Result<json> JobResults(const Principal& caller, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadOwnJob(caller, id));
    const json job = r.enclave.value("job", json::object());
    json out = {{"request_id", id},
                {"state", job.value("state", IsTerminal(r.state) ? "abandoned" : "pending")},
                {"results", json::array()}};
    if (job.contains("expires_at_us")) out["expires_at_us"] = job["expires_at_us"];
    for (const json& result : job.value("results", json::array())) {
      json entry = result;
      if (KeepsJobResults(r) && result.value("outcome", "") == "ok") {
        entry["href"] =
            "/v1/requests/" + id + "/results/" + std::to_string(result.value("index", 0));
      }
      out["results"].push_back(std::move(entry));
    }
    return out;
  }

  Result<JobResultFile> JobResultFileOf(const Principal& caller, const std::string& id,
                                        size_t index) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadOwnJob(caller, id));
    AIRLOCK_ASSIGN_OR_RETURN(const json result, FinishedJobResult(r, index));
    JobResultFile file;
    file.temporary = true;
    if (OwnedHere(r)) {
      AIRLOCK_ASSIGN_OR_RETURN(file.path, PinJobResult(d_.config->results_dir, id, index));
    } else {
      // The files are on the disk of the replica that ran the job.
      if (Peer() == nullptr) return ServedElsewhere(r, "download its results there");
      AIRLOCK_ASSIGN_OR_RETURN(file.path, FetchJobResult(r, index));
    }
    const Status audited = AuditEvent({{"event", "job.result_downloaded"},
                                       {"request_id", id},
                                       {"index", index},
                                       {"rows", result.value("rows", 0)},
                                       {"principal", PrincipalRef(caller)}});
    if (!audited.ok()) {
      RemoveForwardedFile(file.path);
      return audited;
    }
    return file;
  }

  // The owner's side of a forwarded download: the file, unaudited (the
  // replica the requester called audits it).
  Result<std::string> PeerJobResultPath(const std::string& id, size_t index) {
    AIRLOCK_ASSIGN_OR_RETURN(std::optional<RequestRecord> loaded, d_.store->Load(id));
    if (!loaded) return Status::NotFound("request " + id + " not found");
    if (!OwnedHere(*loaded)) return Status::NotFound("request " + id + " ran elsewhere");
    AIRLOCK_RETURN_IF_ERROR(FinishedJobResult(*loaded, index).status());
    return PinJobResult(d_.config->results_dir, id, index);
  }

  // Result `index` of a finished job, or why it cannot be downloaded.
  static Result<json> FinishedJobResult(const RequestRecord& r, size_t index) {
    const json job = r.enclave.value("job", json::object());
    if (job.value("state", "") == "expired") {
      return Status::FailedPrecondition("the job results of request " + r.id +
                                        " have expired and were deleted");
    }
    if (!KeepsJobResults(r)) {
      return Status::Conflict("request " + r.id + " has no finished job (it is " +
                              std::string(RequestStateName(r.state)) + ")");
    }
    const json results = job.value("results", json::array());
    if (index >= results.size()) return Status::NotFound("no job result " + std::to_string(index));
    if (results[index].value("outcome", "") != "ok") {
      return Status::Conflict("job result " + std::to_string(index) +
                              " failed: " + results[index].value("error", "unknown error"));
    }
    return results[index];
  }

  // Copies result `index` from the replica that ran the job into a
  // temporary file here (removed once the answer has opened it).
  Result<std::string> FetchJobResult(const RequestRecord& r, size_t index) {
    AIRLOCK_ASSIGN_OR_RETURN(const std::string owner_url, LiveReplicaUrl(OwnerOf(r)));
    AIRLOCK_ASSIGN_OR_RETURN(const std::string path,
                             JobResultScratchPath(d_.config->results_dir, r.id, index));
    AIRLOCK_RETURN_IF_ERROR(Peer()->Download(
        owner_url, "/v1/peer/requests/" + r.id + "/results/" + std::to_string(index), path,
        static_cast<uint64_t>(d_.config->limits.max_job_result_bytes), kPeerDownloadTimeout));
    return path;
  }

  static void RemoveForwardedFile(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }

  // Deletes a finished job's results once their retention ended.
  void ExpireJobResults(RequestRecord& r) {
    RequestRecord next = r;
    next.version = r.version + 1;
    next.updated_at_us = d_.now_us();
    next.enclave["job"]["state"] = "expired";
    const Status audited = AuditEvent(
        {{"event", "job.results_expired"}, {"request_id", r.id}, {"version", next.version}});
    if (!audited.ok()) {
      Schedule(r.id, d_.now_us() + 60 * kMicros);  // retry: deletion must be recorded
      return;
    }
    RemoveJobResults(d_.config->results_dir, r.id);
    const Status saved = d_.store->Save(next);
    if (!saved.ok()) spdlog::warn("request {}: {}", r.id, saved.ToString());
  }

  Result<json> AuditTrail(const Principal& caller, const std::string& id, size_t limit) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(caller, id));
    AIRLOCK_ASSIGN_OR_RETURN(auto records, d_.audit->ForRequest(id, limit));
    return json{{"request_id", id}, {"records", records}};
  }

  Result<json> SearchAudit(const Principal& caller, const AuditSearchQuery& query) {
    AuditSearchScope scope;
    scope.sees_everything = tenancy_.IsAnyAdmin(caller);
    // A tenant's admin sees everything of the tenant's, and only that.
    if (tenancy_.enabled() && !tenancy_.IsPlatformAdmin(caller)) scope.tenant = caller.tenant;
    scope.lookup = [&](const std::string& id) -> Result<std::optional<AuditRequestFacts>> {
      AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(id));
      if (!loaded) return std::optional<AuditRequestFacts>();
      AuditRequestFacts facts;
      facts.visible = CanSee(caller, *loaded);
      facts.requester = loaded->requester_subject();
      facts.datasets = loaded->request.value("datasets", std::vector<std::string>{});
      return std::optional<AuditRequestFacts>(std::move(facts));
    };
    AIRLOCK_ASSIGN_OR_RETURN(AuditSearchPage page, airlock::SearchAudit(*d_.audit, query, scope));
    json answer = {{"records", std::move(page.records)}, {"scanned", page.scanned}};
    if (page.next) answer["next_page_token"] = std::to_string(*page.next);
    return answer;
  }

  // Bounds the scan for awaiting=me: this many requests of each waiting
  // state are looked at.
  static constexpr size_t kMaxAwaitingScan = 5000;

  // Whether `r` waits for `caller`'s decision (see RequestListQuery).
  bool AwaitsDecisionOf(const Principal& caller, const RequestRecord& r) const {
    if (r.requester_subject() == caller.subject) return false;
    if (!tenancy_.Reaches(caller, Tenancy::RequestTenant(r))) return false;
    const json* approvals = &r.approvals;
    std::vector<std::string> groups;
    if (r.state == RequestState::kPendingApproval) {
      groups = ApprovalGroups(r.decision);
    } else if (const json* extension = PendingExtension(r);
               r.state == RequestState::kReady && extension != nullptr) {
      groups = ApprovalGroups(extension->value("decision", json::object()));
      approvals = extension->contains("approvals") ? &(*extension)["approvals"] : nullptr;
    } else {
      return false;
    }
    if (!InAnyGroup(caller, groups)) return false;
    if (approvals != nullptr && approvals->is_array()) {
      for (const auto& a : *approvals) {
        if (a.value("subject", "") == caller.subject) return false;
      }
    }
    return true;
  }

  Result<json> ListAwaiting(const Principal& caller, size_t limit) {
    std::vector<RequestRecord> waiting;
    for (RequestState state : {RequestState::kPendingApproval, RequestState::kReady}) {
      RequestFilter filter;
      filter.state = state;
      filter.limit = 500;
      size_t scanned = 0;
      do {
        AIRLOCK_ASSIGN_OR_RETURN(RequestPage page, d_.store->List(filter));
        for (auto& r : page.records) {
          if (AwaitsDecisionOf(caller, r)) waiting.push_back(std::move(r));
        }
        scanned += filter.limit;
        filter.page_token = page.next_page_token;
      } while (!filter.page_token.empty() && scanned < kMaxAwaitingScan);
    }
    // Whoever has waited longest comes first.
    std::sort(waiting.begin(), waiting.end(), [](const RequestRecord& a, const RequestRecord& b) {
      return a.updated_at_us < b.updated_at_us;
    });
    json items = json::array();
    for (auto& r : waiting) {
      if (items.size() >= limit) break;
      items.push_back(View(std::move(r)));
    }
    return json{{"requests", items}};
  }

  Result<json> List(const Principal& caller, const RequestListQuery& query) {
    if (query.awaiting_me) return ListAwaiting(caller, std::clamp<size_t>(query.limit, 1, 500));
    RequestFilter filter;
    filter.state = query.state;
    filter.limit = std::clamp<size_t>(query.limit, 1, 500);
    filter.page_token = query.page_token;
    const bool sees_all =
        tenancy_.IsAnyAdmin(caller) || InAnyGroup(caller, d_.config->reviewer_groups);
    if (query.mine || !sees_all) filter.requester_subject = caller.subject;
    // Filtered in the store, so that pages stay full.
    if (tenancy_.enabled() && !tenancy_.IsPlatformAdmin(caller)) filter.tenant = caller.tenant;
    AIRLOCK_ASSIGN_OR_RETURN(RequestPage page, d_.store->List(filter));
    json items = json::array();
    for (const auto& r : page.records) items.push_back(View(r));
    json out = {{"requests", items}};
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  }

  Result<json> Get(const Principal& caller, const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord r, LoadVisible(caller, id));
    return View(std::move(r));
  }

  // Get's answer as text, rendered from the stored documents without parsing
  // them (request_view.h); the same bytes as Get(...)->dump().
  Result<std::string> GetText(const Principal& caller, const std::string& id, bool audit_probes) {
    AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<const StoredRequestText> loaded,
                             d_.store->LoadText(id));
    // Unknown and invisible look the same: existence is not disclosed.
    if (!loaded || !CanSee(caller, *loaded)) {
      if (loaded && audit_probes && tenancy_.enabled()) {
        const std::string tenant = Tenancy::RequesterTenant(loaded->requester);
        if (!tenancy_.Reaches(caller, tenant)) AuditProbe(caller, tenant, {{"request_id", id}});
      }
      return Status::NotFound("request " + id + " not found");
    }
    std::optional<json> agent_status;
    if (d_.remote != nullptr) {
      if (auto agent = StoredEnclaveAgent(*loaded)) agent_status = d_.remote->AgentStatus(*agent);
    }
    const std::shared_ptr<const json> progress = supervisor_->Progress(loaded->id);
    // An agent's status is live state of its own: such views are not kept.
    if (!agent_status) {
      if (auto cached = views_.Find(loaded, progress)) return std::string(*cached);
    }
    AIRLOCK_ASSIGN_OR_RETURN(std::string view, RenderRequestView(*loaded, *progress, agent_status));
    if (!agent_status) {
      views_.Put(std::move(loaded), progress, std::make_shared<const std::string>(view));
    }
    return view;
  }

  // --- expiry scheduler ---------------------------------------------------

  void Schedule(const std::string& id, int64_t deadline_us) {
    if (deadline_us <= 0) return;
    bool earliest;
    {
      std::lock_guard lock(sched_mu_);
      earliest = deadlines_.Set(id, deadline_us);
    }
    // A later deadline is picked up by the scheduler's next wake-up anyway.
    if (earliest) sched_cv_.notify_all();
  }

  void Unschedule(const std::string& id) {
    std::lock_guard lock(sched_mu_);
    deadlines_.Clear(id);
  }

  void Start() {
    std::lock_guard lock(sched_mu_);
    if (scheduler_.joinable()) return;
    scheduler_ = std::thread([this] { RunScheduler(); });
    if (Replicated()) reconciler_ = std::thread([this] { RunReconciler(); });
  }

  void RunReconciler() {
    std::unique_lock lock(sched_mu_);
    while (!stopping_) {
      lock.unlock();
      ReconcileReplicas();
      lock.lock();
      sched_cv_.wait_for(lock, std::chrono::microseconds(d_.replication->scan_interval_us),
                         [&] { return stopping_; });
    }
  }

  // --- replicas -------------------------------------------------------------

  void ReconcileReplicas() {
    if (!Replicated() || (d_.replication->lease_held && !d_.replication->lease_held())) return;
    // What sites told other replicas.
    if (d_.sites != nullptr) {
      if (Status refreshed = d_.sites->Refresh(); !refreshed.ok()) {
        spdlog::warn("replica scan: site catalogs: {}", refreshed.message());
      }
    }
    // Enclaves listed before the store is read: one launched after the read
    // is not judged by a snapshot older than its request's approval.
    const std::vector<std::string> local = supervisor_->ActiveIds();
    auto active = d_.store->LoadActive();
    if (!active.ok()) {
      spdlog::warn("replica scan: {}", active.status().message());
      return;
    }
    // Local enclaves whose request ended, or moved, elsewhere.
    std::set<std::string> mine;
    for (const RequestRecord& r : *active) {
      if (OwnedHere(r)) mine.insert(r.id);
    }
    for (const std::string& id : local) {
      if (mine.count(id) == 0) {
        supervisor_->Teardown(id, "request ended or moved on another replica",
                              AIRLOCK_CLOSE_REVOKED);
      }
    }
    // Deadlines whose owner did not act (lost, or it never heard of them).
    const int64_t now = d_.now_us();
    for (const RequestRecord& r : *active) {
      if (r.deadline_us > 0 && r.deadline_us + d_.replication->scan_interval_us < now) {
        Expire(r.id);
      }
    }
    auto replicas = d_.store->ListReplicas();
    if (!replicas.ok()) return;
    SyncForwarded(*active, *replicas);
    TakeOverLapsedReplicas(*active, *replicas);
    PublishAgentLinks();
    const AgentHolderMap holders = AgentHolders(&*replicas);
    HandOverToAgentHolders(*active, holders);
    LaunchStranded(*active, local, holders);
  }

  // --- agents across replicas -------------------------------------------------
  //
  // An agent links with one replica at a time, and only that replica can
  // provision on it: a request for an agent's datasets is served by the
  // replica its agent links with. Each replica says in the shared state
  // which agents link with it (agent_links); the owner of such a request
  // hands it to the agent's replica when that is another live one, as a
  // takeover does (approved again under the new owner, audited, the same
  // scope and credential), and tells it to launch; that replica's scan
  // launches it too, should the word not arrive.

  // Which live replica each agent links with, as far as this one knows.
  struct AgentHolderMap {
    std::map<std::string, std::string> replica_by_agent;  // only live other replicas
    std::map<std::string, int64_t> linked_here;
  };
  struct AgentHolder {
    std::string agent;
    std::string replica;
  };

  // Reads the links and (unless given) the replicas from the store; empty
  // when this kernel has no agents or is not replicated.
  AgentHolderMap AgentHolders(const std::vector<ReplicaStatus>* known = nullptr) {
    AgentHolderMap map;
    if (!Replicated() || d_.remote == nullptr || !d_.config->agents.enabled) return map;
    map.linked_here = d_.remote->LinkedAgents();
    auto links = d_.store->ListAgentLinks();
    if (!links.ok() || links->empty()) return map;
    std::vector<ReplicaStatus> loaded;
    if (known == nullptr) {
      auto replicas = d_.store->ListReplicas();
      if (!replicas.ok()) return map;
      loaded = std::move(*replicas);
      known = &loaded;
    }
    std::set<std::string> live;
    for (const ReplicaStatus& replica : *known) {
      if (replica.replica_id != Self() &&
          replica.now_us - replica.last_heartbeat_us < d_.replication->lease_ttl_us) {
        live.insert(replica.replica_id);
      }
    }
    for (const AgentLink& link : *links) {
      if (live.count(link.replica_id)) map.replica_by_agent[link.agent] = link.replica_id;
    }
    return map;
  }

  // Whether `r`'s enclave runs on an agent that does not link with this
  // replica (which then looks for the one it links with).
  bool AgentLinkedElsewhere(const RequestRecord& r) const {
    if (!Replicated() || d_.remote == nullptr || !d_.config->agents.enabled) return false;
    auto agent = AgentForDatasets(*d_.config, d_.sites,
                                  r.request.value("datasets", std::vector<std::string>{}));
    return agent.ok() && !agent->empty() && d_.remote->LinkedAgents().count(*agent) == 0;
  }

  // The live replica that should serve `r` instead of this one: the one its
  // agent links with, while the agent does not link with this one.
  std::optional<AgentHolder> AgentHolderElsewhere(const RequestRecord& r,
                                                  const AgentHolderMap& holders) const {
    if (holders.replica_by_agent.empty()) return std::nullopt;
    auto agent = AgentForDatasets(*d_.config, d_.sites,
                                  r.request.value("datasets", std::vector<std::string>{}));
    if (!agent.ok() || agent->empty() || holders.linked_here.count(*agent)) return std::nullopt;
    auto it = holders.replica_by_agent.find(*agent);
    if (it == holders.replica_by_agent.end()) return std::nullopt;
    return AgentHolder{*agent, it->second};
  }

  // Tells the shared state which agents link with this replica now.
  void PublishAgentLinks() {
    if (d_.remote == nullptr || !d_.config->agents.enabled) return;
    const std::map<std::string, int64_t> linked = d_.remote->LinkedAgents();
    std::vector<std::string> held, claimed;
    for (const auto& [agent, since] : linked) {
      held.push_back(agent);
      auto was = published_links_.find(agent);
      if (was == published_links_.end() || was->second != since) claimed.push_back(agent);
    }
    const Status recorded = d_.store->RecordAgentLinks(Self(), held, claimed);
    if (!recorded.ok()) {
      spdlog::warn("replica scan: agent links not recorded: {}", recorded.message());
      return;
    }
    published_links_ = linked;
  }

  void HandOverToAgentHolders(const std::vector<RequestRecord>& active,
                              const AgentHolderMap& holders) {
    for (const RequestRecord& r : active) {
      if (!OwnedHere(r) || !MovesWithItsAgent(r.state)) continue;
      if (!AgentHolderElsewhere(r, holders)) continue;
      const Status handed = RetryingRaces([&](bool* raced) -> Status {
        std::lock_guard lock(StripeFor(r.id));
        AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(r.id));
        if (!loaded || !OwnedHere(*loaded) || !MovesWithItsAgent(loaded->state)) {
          return Status::Ok();  // moved on meanwhile
        }
        auto holder = AgentHolderElsewhere(*loaded, holders);
        if (!holder) return Status::Ok();
        return HandOverLocked(*loaded, *holder, raced);
      });
      if (!handed.ok()) spdlog::warn("request {}: hand-over failed: {}", r.id, handed.message());
    }
  }

  static bool MovesWithItsAgent(RequestState state) {
    return state == RequestState::kApproved || state == RequestState::kProvisioning ||
           state == RequestState::kIngesting || state == RequestState::kReady;
  }

  // Hands `r` (owned here, caller holds its stripe) to the replica its
  // agent links with: an approved request changes owner; one whose enclave
  // was being built or served here is approved again under the new owner,
  // which provisions it afresh (same scope, same credential). This
  // replica's enclave for it goes.
  Status HandOverLocked(RequestRecord& r, const AgentHolder& to, bool* raced) {
    const json moved = {{"from_replica", Self()}, {"to_replica", to.replica}, {"agent", to.agent}};
    const RequestState was = r.state;
    r.enclave["owner"] = to.replica;
    if (was == RequestState::kApproved) {
      json event = {{"event", "request.handed_over"}, {"state", RequestStateName(was)}};
      event.update(moved);
      AIRLOCK_RETURN_IF_ERROR(SaveInPlace(r, std::move(event), raced));
    } else {
      AIRLOCK_RETURN_IF_ERROR(Move(r, RequestState::kApproved,
                                   "agent '" + to.agent + "' links with replica " + to.replica +
                                       "; provisioning the enclave again there",
                                   moved, nullptr, raced));
    }
    spdlog::info("request {}: handed over to replica {}, which agent '{}' links with", r.id,
                 to.replica, to.agent);
    supervisor_->Teardown(r.id, "served by replica " + to.replica + " now", AIRLOCK_CLOSE_FAILED);
    AskOwnerToLaunch(r);
    return Status::Ok();
  }

  // Word to the new owner of approved request `r` to launch it now; without
  // it (no peer link, or no answer) its scan launches it within an interval.
  void AskOwnerToLaunch(const RequestRecord& r) {
    if (Peer() == nullptr) return;
    auto url = LiveReplicaUrl(OwnerOf(r));
    Status told = url.status();
    if (url.ok()) {
      auto answer = Peer()->Call(*url, "POST", "/v1/peer/requests/" + r.id + "/launch", "{}",
                                 kPeerNoticeTimeout);
      told = !answer.ok()            ? answer.status()
             : answer->status == 200 ? Status::Ok()
                                     : StatusFromPeerAnswer(*answer, "replica " + OwnerOf(r));
    }
    if (!told.ok()) {
      spdlog::warn("request {}: replica {} launches it at its next scan: {}", r.id, OwnerOf(r),
                   told.message());
    }
  }

  // Approved requests this replica owns but runs no enclave for (handed
  // over or taken over while the word to launch was lost).
  // Those the scan just handed over are not among them (`active` was read
  // before).
  void LaunchStranded(const std::vector<RequestRecord>& active,
                      const std::vector<std::string>& local, const AgentHolderMap& holders) {
    const std::set<std::string> running(local.begin(), local.end());
    for (const RequestRecord& r : active) {
      if (r.state == RequestState::kApproved && OwnedHere(r) && !running.count(r.id) &&
          r.deadline_us > d_.now_us() && StartUs(r) <= d_.now_us() &&
          !AgentHolderElsewhere(r, holders)) {
        LaunchHere(r);
      }
    }
  }

  // The peer link's word that request `id` was handed to this replica.
  Status PeerLaunch(const std::string& id) {
    AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(id));
    if (!loaded) return Status::NotFound("no such request");
    if (!OwnedHere(*loaded)) return ServedElsewhere(*loaded, "launch it there");
    if (loaded->state != RequestState::kApproved) {
      return Status::Conflict("request " + id + " is " +
                              std::string(RequestStateName(loaded->state)) + ", not approved");
    }
    LaunchHere(*loaded);
    return Status::Ok();
  }

  // Launches approved request `r`, handed to this replica, here. Its
  // tunnel forwarded the request's queries to the previous owner until
  // now: that endpoint goes first, as in a takeover.
  void LaunchHere(const RequestRecord& r) {
    if (Peer() != nullptr) d_.replication->forwarded->Close(r.id, AIRLOCK_CLOSE_FAILED);
    LaunchWhenDue(r);
  }

  // When the request's window may start: its scheduled start (not_before),
  // else at once (0).
  static int64_t StartUs(const RequestRecord& r) {
    return r.request.value("not_before", int64_t{0}) * kMicros;
  }

  // Where the running window of ready request `r` started.
  static int64_t WindowStartUs(const RequestRecord& r) {
    return r.deadline_us - r.request.value("window_seconds", int64_t{0}) * kMicros;
  }

  // Where the window of a request approved at `now` ends: it starts at its
  // scheduled start if that is later.
  static int64_t WindowEndUs(const RequestRecord& r, int64_t now) {
    return std::max(now, StartUs(r)) + r.request.value("window_seconds", int64_t{3600}) * kMicros;
  }

  // Provisions approved request `r` now, or, when its window starts later,
  // when it starts: the expiry scheduler calls back at its start (Expire).
  void LaunchWhenDue(const RequestRecord& r) {
    const int64_t start = StartUs(r);
    if (start > d_.now_us()) {
      Schedule(r.id, start);
      return;
    }
    supervisor_->Launch(r);
  }

  void TakeOverLapsedReplicas(const std::vector<RequestRecord>& active,
                              const std::vector<ReplicaStatus>& replicas) {
    if (d_.replication->may_fence && !d_.replication->may_fence()) return;
    for (const ReplicaStatus& replica : replicas) {
      if (replica.replica_id == Self()) continue;
      if (replica.now_us - replica.last_heartbeat_us < d_.replication->lease_ttl_us) continue;
      const bool owns_any = std::any_of(active.begin(), active.end(), [&](const RequestRecord& r) {
        return OwnerOf(r) == replica.replica_id;
      });
      if (!owns_any) continue;
      auto fenced = d_.store->FenceReplica(replica.replica_id, replica.lease_epoch,
                                           d_.replication->lease_ttl_us);
      if (!fenced.ok() || !*fenced) continue;  // it came back, or another survivor won
      spdlog::warn("replica {} lost its lease (silent {} ms): taking its requests over",
                   replica.replica_id, (replica.now_us - replica.last_heartbeat_us) / 1000);
      (void)AuditEvent({{"event", "replica.fenced"},
                        {"replica", replica.replica_id},
                        {"lease_epoch", replica.lease_epoch},
                        {"by", Self()}});
      for (const RequestRecord& r : active) {
        if (OwnerOf(r) != replica.replica_id) continue;
        const Status taken =
            RetryingRaces([&](bool* raced) { return TakeOver(r.id, replica.replica_id, raced); });
        if (!taken.ok()) {
          spdlog::error("request {}: takeover from {} failed: {}", r.id, replica.replica_id,
                        taken.ToString());
        }
      }
    }
  }

  // Moves request `id` from the lapsed replica `from` to this one, and
  // resumes what `from` was doing: a decision in flight is closed (its
  // requester was never answered), timers are armed here, and an enclave
  // that was being built or served is provisioned again here (same scope,
  // data pulled again).
  Status TakeOver(const std::string& id, const std::string& from, bool* raced) {
    std::lock_guard lock(StripeFor(id));
    AIRLOCK_ASSIGN_OR_RETURN(auto loaded, d_.store->Load(id));
    if (!loaded) return Status::Ok();
    RequestRecord r = std::move(*loaded);
    if (IsTerminal(r.state) || OwnerOf(r) != from) return Status::Ok();  // moved on meanwhile
    const json moved = {{"from_replica", from}, {"to_replica", Self()}};
    // This replica's tunnel serves the request from its own enclave from
    // now on; the endpoint that forwarded to the lost owner goes first.
    if (Peer() != nullptr) d_.replication->forwarded->Close(id, AIRLOCK_CLOSE_FAILED);
    ClaimOwnership(r);
    switch (r.state) {
      case RequestState::kSubmitted:
      case RequestState::kEvaluating:
        AIRLOCK_RETURN_IF_ERROR(Move(r, RequestState::kClosed,
                                     "replica " + from + " was lost before a decision", moved,
                                     nullptr, raced));
        break;
      case RequestState::kPendingApproval:
      case RequestState::kApproved: {
        json event = {{"event", "request.taken_over"}, {"state", RequestStateName(r.state)}};
        event.update(moved);
        AIRLOCK_RETURN_IF_ERROR(SaveInPlace(r, std::move(event), raced));
        break;
      }
      default:
        if (r.deadline_us <= d_.now_us()) {
          AIRLOCK_RETURN_IF_ERROR(Move(r, RequestState::kClosed,
                                       "access window ended while replica " + from + " was lost",
                                       moved, nullptr, raced));
        } else {
          AIRLOCK_RETURN_IF_ERROR(
              Move(r, RequestState::kApproved,
                   "replica " + from + " was lost; provisioning the enclave again on " + Self(),
                   moved, nullptr, raced));
        }
        break;
    }
    AfterTransition(r);
    return Status::Ok();
  }

  Status ServedElsewhere(const RequestRecord& r, std::string_view what) {
    const std::string owner = OwnerOf(r);
    std::string where = "replica " + owner;
    if (auto replicas = d_.store->ListReplicas(); replicas.ok()) {
      for (const ReplicaStatus& replica : *replicas) {
        if (replica.replica_id == owner && !replica.api_url.empty()) {
          where += " (" + replica.api_url + ")";
        }
      }
    }
    return Status::Conflict("request " + r.id + " is served by " + where + ": " +
                            std::string(what));
  }

  void AbandonAll() {
    if (Peer() != nullptr) d_.replication->forwarded->CloseAll(AIRLOCK_CLOSE_SHUTDOWN);
    supervisor_->TeardownAll("this replica lost its lease; another one serves its requests",
                             AIRLOCK_CLOSE_SHUTDOWN);
  }

  void RunScheduler() {
    std::unique_lock lock(sched_mu_);
    while (!stopping_) {
      const int64_t now = d_.now_us();
      const std::vector<std::string> due = deadlines_.TakeDue(now);
      const int64_t next =
          std::min<int64_t>(now + 250000, deadlines_.Earliest().value_or(now + 250000));
      if (!due.empty()) {
        lock.unlock();
        for (const auto& id : due) Expire(id);
        lock.lock();
        continue;
      }
      // Bounded wait: the clock may be replaced in tests.
      const auto wait = std::chrono::microseconds(std::clamp<int64_t>(next - now, 1000, 250000));
      sched_cv_.wait_for(lock, wait);
    }
  }

  void Expire(const std::string& id) {
    std::lock_guard lock(StripeFor(id));
    auto loaded = d_.store->Load(id);
    if (!loaded.ok() || !loaded->has_value()) return;
    RequestRecord r = std::move(**loaded);
    // Another replica's request (approved there since this one scheduled
    // it): its owner runs the deadline, and the scan here only once the
    // owner let it pass by a whole interval.
    if (!OwnedHere(r) && r.deadline_us + d_.replication->scan_interval_us > d_.now_us()) {
      return;
    }
    if (r.state == RequestState::kApproved && OwnedHere(r) && r.deadline_us > d_.now_us()) {
      // Its scheduled start (LaunchWhenDue), or a wake-up before it.
      LaunchWhenDue(r);
      return;
    }
    if (r.deadline_us > d_.now_us()) {
      // Moved on since it was scheduled (an extension, perhaps granted on
      // another replica): the tunnel follows.
      if (r.state == RequestState::kReady && OwnedHere(r)) FollowWindow(r);
      Schedule(id, r.deadline_us);
      return;
    }
    if (KeepsJobResults(r)) {
      ExpireJobResults(r);
      return;
    }
    Status s;
    if (r.state == RequestState::kPendingApproval) {
      s = Move(r, RequestState::kExpired, "no decision within the approval window", json(),
               nullptr);
    } else if (!IsTerminal(r.state) && r.state != RequestState::kSubmitted) {
      s = Move(r, RequestState::kClosed, "access window ended", json(), nullptr);
    } else {
      return;
    }
    if (!s.ok()) {
      spdlog::error("request {}: expiry failed: {}", id, s.ToString());
      Schedule(id, d_.now_us() + kMicros);  // retry
      return;
    }
    AfterTransition(r, AIRLOCK_CLOSE_WINDOW_ENDED);
  }

  // --- recovery and shutdown ------------------------------------------------

  Status Recover() {
    const Status reaped = d_.isolator->ReapOrphans();
    if (!reaped.ok()) spdlog::warn("isolator could not reap orphans: {}", reaped.ToString());
    AIRLOCK_ASSIGN_OR_RETURN(auto active, d_.store->LoadActive());
    for (auto& r : active) {
      // Other replicas' requests are theirs to run (or, once their lease
      // lapses, the survivor's that fences them).
      if (!OwnedHere(r)) continue;
      std::lock_guard lock(StripeFor(r.id));
      Status s;
      switch (r.state) {
        case RequestState::kPendingApproval:
          Schedule(r.id, r.deadline_us);
          continue;
        case RequestState::kApproved:
          // Nothing was provisioned yet: resume.
          if (r.deadline_us > d_.now_us()) {
            LaunchWhenDue(r);
            continue;
          }
          s = Move(r, RequestState::kClosed, "access window ended while the kernel was down",
                   json(), nullptr);
          break;
        case RequestState::kSubmitted:
        case RequestState::kEvaluating:
          // Never acknowledged to the requester; cannot be a half-made decision.
          s = Move(r, RequestState::kClosed, "interrupted by a kernel restart before a decision",
                   json(), nullptr);
          break;
        case RequestState::kProvisioning:
        case RequestState::kIngesting:
          s = Move(r, RequestState::kFailed, "enclave lost in a kernel restart during ingestion",
                   json(), nullptr);
          break;
        case RequestState::kReady:
          // The enclave's memory and the tunnel's credential did not survive.
          s = Move(r, RequestState::kClosed, "enclave did not survive a kernel restart", json(),
                   nullptr);
          break;
        default:
          continue;
      }
      if (!s.ok()) return s.WithContext("recovering request " + r.id);
      AfterTransition(r);
    }
    RecoverJobResults();
    return Status::Ok();
  }

  // Results on disk outlive a restart only while their request keeps them.
  void RecoverJobResults() {
    std::error_code ec;
    std::filesystem::directory_iterator it(d_.config->results_dir, ec);
    if (ec) return;  // none yet
    for (const auto& entry : it) {
      const std::string id = entry.path().filename().string();
      auto loaded = d_.store->Load(id);
      if (loaded.ok() && loaded->has_value() && KeepsJobResults(**loaded)) {
        Schedule(id, (*loaded)->deadline_us);
      } else {
        RemoveJobResults(d_.config->results_dir, id);
      }
    }
  }

  void Shutdown() {
    {
      std::lock_guard lock(sched_mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    sched_cv_.notify_all();
    if (scheduler_.joinable()) scheduler_.join();
    if (reconciler_.joinable()) reconciler_.join();
    if (Peer() != nullptr) d_.replication->forwarded->CloseAll(AIRLOCK_CLOSE_SHUTDOWN);
    // Live enclaves die with the kernel; their requests are closed by the
    // next start's recovery, which audits it. Background work still calls
    // back into this object while draining, so the supervisor stays alive
    // until it has stopped.
    supervisor_->Stop();
  }

  size_t cached_views() const { return views_.size(); }
  size_t active_enclaves() const { return supervisor_ ? supervisor_->active() : 0; }
  Result<json> DescribeDatasets(std::chrono::milliseconds timeout, const std::atomic<bool>* stop) {
    if (!supervisor_) return Status::Unavailable("this kernel runs no enclaves");
    return supervisor_->DescribeDatasets(timeout, stop);
  }
  EnclaveMemory enclave_memory() const {
    return supervisor_ ? supervisor_->memory() : EnclaveMemory{};
  }

 private:
  Dependencies d_;
  const Tenancy tenancy_{*d_.config};
  std::array<std::mutex, 4096> stripes_;
  std::unique_ptr<EnclaveSupervisor> supervisor_;
  // The agent links this replica last recorded (reconciler thread only).
  std::map<std::string, int64_t> published_links_;
  // Rendered GET /v1/requests/{id} answers of recently read requests.
  RequestViewCache views_{kViewCacheEntries};

  std::mutex sched_mu_;
  std::condition_variable sched_cv_;
  DeadlineQueue deadlines_;  // GUARDED_BY(sched_mu_)
  bool stopping_ = false;    // GUARDED_BY(sched_mu_)
  std::thread scheduler_;
  std::thread reconciler_;  // replicated stores only
};

RequestManager::RequestManager(Dependencies deps)
    : impl_(std::make_unique<Impl>(std::move(deps))) {}
RequestManager::~RequestManager() = default;

Status RequestManager::Recover() {
  return impl_->Recover();
}
void RequestManager::AbandonAll() {
  impl_->AbandonAll();
}
void RequestManager::ReconcileReplicas() {
  impl_->ReconcileReplicas();
}
void RequestManager::Start() {
  impl_->Start();
}
void RequestManager::Shutdown() {
  impl_->Shutdown();
}
Result<json> RequestManager::Create(const Principal& p, const json& body) {
  return impl_->Create(p, body);
}
Result<json> RequestManager::PreviewCatalog(const Principal& p, json catalog) {
  return impl_->PreviewCatalog(p, std::move(catalog));
}
Result<json> RequestManager::Get(const Principal& p, const std::string& id) {
  return impl_->Get(p, id);
}

Result<std::string> RequestManager::GetText(const Principal& p, const std::string& id,
                                            bool audit_probes) {
  return impl_->GetText(p, id, audit_probes);
}
Result<json> RequestManager::List(const Principal& p, const RequestListQuery& q) {
  return impl_->List(p, q);
}
Result<json> RequestManager::Approve(const Principal& p, const std::string& id,
                                     const std::string& c) {
  return impl_->Approve(p, id, c);
}
Result<json> RequestManager::Deny(const Principal& p, const std::string& id, const std::string& c) {
  return impl_->Deny(p, id, c);
}
Result<json> RequestManager::Revoke(const Principal& p, const std::string& id,
                                    const std::string& c) {
  return impl_->Revoke(p, id, c);
}
Result<json> RequestManager::Extend(const Principal& p, const std::string& id, const json& body) {
  return impl_->Extend(p, id, body);
}
Result<json> RequestManager::CollectCredentials(const Principal& p, const std::string& id) {
  return impl_->CollectCredentials(p, id);
}
Status RequestManager::QueryAsRequester(const Principal& caller, const std::string& id,
                                        std::string_view sql, const std::string& transport,
                                        sdk::BatchConsumer& out) {
  return impl_->QueryAsRequester(caller, id, sql, transport, out);
}
Result<json> RequestManager::TablesAsRequester(const Principal& caller, const std::string& id) {
  return impl_->TablesAsRequester(caller, id);
}
Status RequestManager::PeerQuery(const std::string& id, std::string_view sql,
                                 const std::string& transport, const std::string& via,
                                 sdk::BatchConsumer& out) {
  return impl_->PeerQuery(id, sql, transport, via, out);
}
Status RequestManager::PeerEnd(const std::string& id, airlock_type_close_reason cause) {
  return impl_->PeerEnd(id, cause);
}

Status RequestManager::PeerLaunch(const std::string& id) {
  return impl_->PeerLaunch(id);
}
Result<json> RequestManager::PeerTables(const std::string& id) {
  return impl_->PeerTables(id);
}
Result<json> RequestManager::PeerCredentials(const std::string& id, const std::string& subject,
                                             const std::string& via) {
  return impl_->PeerCredentials(id, subject, via);
}
Result<json> RequestManager::JobResults(const Principal& p, const std::string& id) {
  return impl_->JobResults(p, id);
}
Result<JobResultFile> RequestManager::JobResultFileOf(const Principal& p, const std::string& id,
                                                      size_t index) {
  return impl_->JobResultFileOf(p, id, index);
}
Result<std::string> RequestManager::PeerJobResultPath(const std::string& id, size_t index) {
  return impl_->PeerJobResultPath(id, index);
}
Result<json> RequestManager::SearchAudit(const Principal& p, const AuditSearchQuery& query) {
  return impl_->SearchAudit(p, query);
}
Result<json> RequestManager::AuditTrail(const Principal& p, const std::string& id, size_t limit) {
  return impl_->AuditTrail(p, id, limit);
}
Result<json> RequestManager::SuspendSite(const Principal& p, const std::string& agent,
                                         const std::string& reason) {
  return impl_->SuspendSite(p, agent, reason);
}
Result<json> RequestManager::ResumeSite(const Principal& p, const std::string& agent,
                                        const std::string& reason) {
  return impl_->ResumeSite(p, agent, reason);
}
void RequestManager::NoteUnknownDataset(const Principal& caller, const std::string& name) {
  impl_->NoteUnknownDataset(caller, name);
}
json RequestManager::MarkCatalogSites(json catalog) {
  return impl_->MarkCatalogSites(std::move(catalog));
}
json RequestManager::MarkSuspendedAgents(json agents) {
  return impl_->MarkSuspendedAgents(std::move(agents));
}
size_t RequestManager::active_enclaves() const {
  return impl_->active_enclaves();
}
Result<json> RequestManager::DescribeDatasets(std::chrono::milliseconds timeout,
                                              const std::atomic<bool>* stop) {
  return impl_->DescribeDatasets(timeout, stop);
}
EnclaveMemory RequestManager::enclave_memory() const {
  return impl_->enclave_memory();
}
size_t RequestManager::cached_views() const {
  return impl_->cached_views();
}

}  // namespace airlock
