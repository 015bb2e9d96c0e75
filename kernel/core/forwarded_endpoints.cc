#include "kernel/core/forwarded_endpoints.h"

#include <set>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "airlock/cpp/abi_util.hpp"
#include "kernel/audit/audit_log.h"
#include "kernel/common/crypto.h"
#include "kernel/core/peer_client.h"
#include "kernel/core/tunnel_sink.h"
#include "kernel/plugin_host/plugin_instances.h"

namespace airlock {

using nlohmann::json;

// One forwarding endpoint. The query channel points at it, so it lives until
// its tunnel endpoint is closed.
struct ForwardedEndpoint {
  std::string request_id;
  Principal requester;
  const PeerClient* peer = nullptr;
  AuditLog* audit = nullptr;
  std::string transport;
  std::chrono::milliseconds timeout{30000};

  mutable std::mutex mu;
  std::string owner;      // GUARDED_BY(mu)
  std::string owner_url;  // GUARDED_BY(mu)
  int64_t not_after = 0;  // GUARDED_BY(mu): Unix seconds, as the tunnel has it

  airlock_type_query_channel channel{};
  std::unique_ptr<plugin_host::TunnelEndpointHandle> endpoint;

  std::string OwnerUrl() const {
    std::lock_guard lock(mu);
    return owner_url;
  }
};

namespace {

// A forwarded query the owner never answered is recorded here: the owner
// records the ones it ran.
void AuditUnreached(const ForwardedEndpoint& e, std::string_view sql, const Status& status) {
  (void)e.audit->Append(
      {{"event", "tunnel.query"},
       {"request_id", e.request_id},
       {"principal",
        {{"subject", e.requester.subject}, {"kind", PrincipalKindName(e.requester.kind)}}},
       {"transport", e.transport},
       {"sql_sha256", Sha256Hex(sql)},
       {"rows", 0},
       {"outcome", StatusCodeName(status.code())},
       {"forwarded_to", e.OwnerUrl()}});
}

airlock_type_status ForwardQuery(void* host_data, const char* sql, size_t length,
                                 const airlock_type_batch_sink* sink, airlock_type_error* error) {
  auto* e = static_cast<ForwardedEndpoint*>(host_data);
  const std::string_view text(sql, length);
  Status status;
  try {
    TunnelSinkConsumer out(sink);
    status = e->peer->Query(e->OwnerUrl(), e->request_id, text, e->transport, out, e->timeout);
    // Unavailable before an answer: the owner wrote no record of it.
    if (status.code() == StatusCode::kUnavailable ||
        status.code() == StatusCode::kDeadlineExceeded) {
      AuditUnreached(*e, text, status);
    }
  } catch (const std::exception&) {
    status = Status::Internal("forwarding the query failed inside the kernel");
  }
  return abi::Report(status, error);
}

airlock_type_status ForwardTables(void* host_data, airlock_type_buffer* tables,
                                  airlock_type_error* error) {
  auto* e = static_cast<ForwardedEndpoint*>(host_data);
  try {
    auto result = e->peer->Tables(e->OwnerUrl(), e->request_id, e->timeout);
    if (!result.ok()) return abi::Report(result.status(), error);
    abi::FillBuffer(tables, result->dump());
    return AIRLOCK_OK;
  } catch (...) {
    return abi::Report(Status::Internal("forwarding the schema browse failed"), error);
  }
}

}  // namespace

ForwardedEndpoints::ForwardedEndpoints(Dependencies deps) : deps_(std::move(deps)) {}

ForwardedEndpoints::~ForwardedEndpoints() {
  CloseAll(AIRLOCK_CLOSE_SHUTDOWN);
}

Status ForwardedEndpoints::OpenLocked(const Target& target) {
  if (auto it = open_.find(target.request_id); it != open_.end()) {
    ForwardedEndpoint& e = *it->second;
    std::lock_guard lock(e.mu);
    e.owner = target.owner;
    e.owner_url = target.owner_url;
    // The requester's window was extended (on whichever replica): follow.
    const int64_t not_after = target.not_after_us / 1000000;
    if (not_after > e.not_after && e.endpoint) {
      AIRLOCK_RETURN_IF_ERROR(e.endpoint->Extend(not_after));
      e.not_after = not_after;
    }
    return Status::Ok();
  }
  if (target.verifier.empty()) {
    return Status::FailedPrecondition("request " + target.request_id +
                                      " has no credential verifier to accept here");
  }
  auto e = std::make_shared<ForwardedEndpoint>();
  e->request_id = target.request_id;
  e->requester = target.requester;
  e->peer = deps_.peer;
  e->audit = deps_.audit;
  e->transport = deps_.transport;
  e->timeout = deps_.query_timeout;
  e->owner = target.owner;
  e->owner_url = target.owner_url;
  e->not_after = target.not_after_us / 1000000;
  e->channel.size = sizeof(e->channel);
  e->channel.host_data = e.get();
  e->channel.query = &ForwardQuery;
  e->channel.tables = &ForwardTables;
  const json spec = {{"request_id", target.request_id},
                     {"principal", target.requester.ToJson()},
                     {"not_after", target.not_after_us / 1000000},
                     {"verifier", target.verifier}};
  auto opened = deps_.tunnel->Open(spec, &e->channel);
  if (!opened.ok()) return opened.status();
  // Opened with a verifier: the grant holds no credential, nothing to keep.
  e->endpoint = std::move(opened->first);
  open_.emplace(target.request_id, std::move(e));
  return Status::Ok();
}

Status ForwardedEndpoints::Ensure(const Target& target) {
  std::lock_guard lock(mu_);
  return OpenLocked(target);
}

std::vector<std::string> ForwardedEndpoints::Sync(const std::vector<Target>& targets) {
  std::set<std::string> wanted;
  std::lock_guard lock(mu_);
  for (const Target& target : targets) {
    wanted.insert(target.request_id);
    const Status opened = OpenLocked(target);
    if (!opened.ok()) {
      spdlog::warn("request {}: cannot serve it here for replica {}: {}", target.request_id,
                   target.owner, opened.message());
    }
  }
  std::vector<std::string> stale;
  for (const auto& [id, endpoint] : open_) {
    if (wanted.count(id) == 0) stale.push_back(id);
  }
  return stale;
}

void ForwardedEndpoints::Close(const std::string& id, airlock_type_close_reason reason) {
  std::shared_ptr<ForwardedEndpoint> e;
  {
    std::lock_guard lock(mu_);
    auto it = open_.find(id);
    if (it == open_.end()) return;
    e = std::move(it->second);
    open_.erase(it);
  }
  // Returns once the tunnel dropped the endpoint's connections: no query is
  // still inside the channel when `e` goes.
  if (e->endpoint) e->endpoint->Close(reason);
}

void ForwardedEndpoints::CloseAll(airlock_type_close_reason reason) {
  for (const std::string& id : Ids()) Close(id, reason);
}

std::vector<std::string> ForwardedEndpoints::Ids() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, endpoint] : open_) ids.push_back(id);
  return ids;
}

}  // namespace airlock
