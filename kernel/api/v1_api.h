// The kernel's HTTP API (v1) as a pure function from request to response:
// routing, authentication, input validation and error mapping. No socket I/O
// here (see http_server.h); see docs/api/openapi.json for the contract.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/api/event_stream.h"
#include "kernel/api/http_types.h"
#include "kernel/api/route_table.h"
#include "kernel/common/secret.h"
#include "kernel/core/metrics.h"

namespace airlock {

class AuditLog;
class IdentityChain;
class Tenancy;
class RequestManager;
namespace mcp {
class McpServer;
}  // namespace mcp

// HTTP status for a Status code (400, 401, 403, 404, 409, 422, 429, 503, ...).
unsigned HttpStatusFor(const Status& status);
// {"error": "<code>", "message": "..."} with the fitting status.
HttpResponse ErrorResponse(const Status& status);
// A job result's index as a path names it: a decimal of at most 6 digits.
std::optional<size_t> JobResultIndex(std::string_view text);
// A job result file as the answer's body (NDJSON).
HttpResponse JobResultResponse(std::string path, bool temporary);

class V1Api {
 public:
  struct Dependencies {
    RequestManager* requests = nullptr;
    const IdentityChain* identity = nullptr;
    AuditLog* audit = nullptr;
    Metrics* metrics = nullptr;
    // GET /v1/catalog: the catalog now, as the caller may see it.
    std::function<nlohmann::json(const Principal& caller)> catalog;
    // Tenants: which the caller belongs to and what it reaches. Null: one
    // organisation, admins are admin_groups.
    const Tenancy* tenancy = nullptr;
    nlohmann::json plugins;  // GET /v1/plugins
    std::string openapi;     // GET /v1/openapi.json (served as is)
    // Admin policy reload (POST /v1/admin/policy/reload); may be empty.
    std::function<Status()> reload_policy;
    std::vector<std::string> admin_groups;
    // GET /v1/agents: outbound-only agents and their status; empty when none
    // are configured (the route answers 404).
    std::function<nlohmann::json()> agents;
    // This replica's hold on its state store (the last heartbeat's outcome):
    // /healthz is 503 while it fails. May be empty (always Ok).
    std::function<Status()> state_health;
    // GET /v1/cluster (admin): the replicas sharing this state store.
    std::function<Result<nlohmann::json>()> cluster;
    // The secret other replicas present on /v1/peer/... (state.peer); null:
    // those routes answer 404.
    std::shared_ptr<const Secret> peer_secret;
    // GET /v1/events; null: the route answers 404.
    EventStreamer* events = nullptr;
    // The console's settings (GET /console/config.json: {"oidc": null or
    // {"issuer","client_id","scopes"}}) and the Content-Security-Policy of
    // its files (empty: kConsoleContentSecurityPolicy).
    nlohmann::json console_config = {{"oidc", nullptr}};
    std::string console_policy;
    // POST /mcp and its metadata; null: those routes answer 404.
    const mcp::McpServer* mcp = nullptr;
  };

  explicit V1Api(Dependencies deps);
  HttpResponse Handle(const HttpRequest& request) const;

  // Every route the API serves, in matching order: the contract that
  // docs/api/openapi.json documents (a test holds the two equal).
  const std::vector<RouteSpec>& routes() const { return matcher_.specs(); }

 private:
  // What a handler gets: the request, the caller (null on public routes) and
  // the path parameters of its route.
  struct Call {
    const HttpRequest& request;
    const Principal* caller;
    const PathParams& params;
    std::string id() const { return std::string(params.Get("id")); }
  };
  using Handler = HttpResponse (V1Api::*)(const Call&) const;
  struct RouteEntry {
    RouteSpec spec;
    Handler handler;
  };
  static const std::vector<RouteEntry>& Table();

  // `*route`: the index of the route that matched in Table(), or -1.
  HttpResponse Dispatch(const HttpRequest& request, int* route) const;
  // Authenticates the caller. A refusal is audited and answered in
  // *refusal; on an I/O thread it is deferred unrecorded (RunOnHandlerPool).
  Result<Principal> Authenticate(const HttpRequest& request, HttpResponse* refusal) const;
  // An admin of the platform or of the caller's tenant.
  bool IsAdmin(const Principal& caller) const;
  bool IsPlatformAdmin(const Principal& caller) const;
  // Settles the caller's tenant (Tenancy::Assign); a refusal is audited and
  // answered in *refusal (deferred on an I/O thread, as Authenticate).
  bool AssignTenant(const HttpRequest& request, Principal* caller, HttpResponse* refusal) const;
  // Checks a /v1/peer/... call's bearer token against the peer secret;
  // refusals are audited and answered in *refusal.
  bool AuthorizePeer(const HttpRequest& request, HttpResponse* refusal) const;
  void CountStatus(unsigned status) const;
  // airlock_http_request_duration_seconds{method, route, code}.
  void ObserveLatency(int route, unsigned status,
                      std::chrono::steady_clock::time_point started) const;

  HttpResponse Health(const Call& call) const;
  HttpResponse MetricsText(const Call& call) const;
  HttpResponse OpenApi(const Call& call) const;
  HttpResponse CreateRequest(const Call& call) const;
  HttpResponse ListRequests(const Call& call) const;
  HttpResponse GetRequest(const Call& call) const;
  // approve, deny and revoke: the same optional {"comment": "..."} body.
  using DecisionAction = Result<nlohmann::json> (RequestManager::*)(const Principal&,
                                                                    const std::string&,
                                                                    const std::string&);
  HttpResponse Decide(const Call& call, DecisionAction action) const;
  HttpResponse Approve(const Call& call) const;
  HttpResponse Deny(const Call& call) const;
  HttpResponse Revoke(const Call& call) const;
  HttpResponse ConsolePage(const Call& call) const;
  HttpResponse ConsoleFile(const Call& call) const;
  HttpResponse Me(const Call& call) const;
  HttpResponse Extend(const Call& call) const;
  HttpResponse Credentials(const Call& call) const;
  HttpResponse JobResults(const Call& call) const;
  HttpResponse JobResultFile(const Call& call) const;
  HttpResponse Catalog(const Call& call) const;
  HttpResponse Plugins(const Call& call) const;
  HttpResponse Agents(const Call& call) const;
  // POST /v1/agents/{name}/suspend and /resume ({"reason"}): admins.
  HttpResponse SiteAct(const Call& call, DecisionAction action) const;
  HttpResponse SuspendAgent(const Call& call) const;
  HttpResponse ResumeAgent(const Call& call) const;
  HttpResponse Cluster(const Call& call) const;
  HttpResponse Audit(const Call& call) const;
  HttpResponse ReloadPolicy(const Call& call) const;
  // The peer link's owner side (v1_peer.cc).
  HttpResponse PeerQuery(const Call& call) const;
  HttpResponse PeerTables(const Call& call) const;
  HttpResponse PeerCredentials(const Call& call) const;
  HttpResponse PeerEnd(const Call& call) const;
  HttpResponse PeerLaunch(const Call& call) const;
  HttpResponse Events(const Call& call) const;
  HttpResponse PeerJobResult(const Call& call) const;
  HttpResponse Mcp(const Call& call) const;
  HttpResponse McpMetadata(const Call& call) const;

  Dependencies d_;
  RouteMatcher matcher_;
  // airlock_http_requests_total by status class (index status / 100),
  // registered on first use; Metrics keeps the counters alive.
  mutable std::array<std::atomic<Metrics::Counter*>, 6> status_counters_{};
  // Per route (the last: no route matched) and status class, registered on
  // first use: the hot path does not search the registry.
  mutable std::vector<std::array<std::atomic<Metrics::Histogram*>, 6>> route_latency_;
};

}  // namespace airlock
