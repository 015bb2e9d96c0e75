#include "kernel/api/v1_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>

#include "kernel/api/identity_chain.h"
#include "kernel/audit/audit_log.h"
#include "kernel/audit/audit_search.h"
#include "kernel/common/rfc3339.h"
#include "kernel/common/strict_json.h"
#include "kernel/console/console_assets.h"
#include "kernel/core/metrics.h"
#include "kernel/core/request_manager.h"
#include "kernel/core/tenancy.h"
#include "kernel/mcp/mcp_server.h"

namespace airlock {

using nlohmann::json;

unsigned HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kFailedPrecondition:
      return 410;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kNotImplemented:
      return 501;
    default:
      return 500;
  }
}

HttpResponse ErrorResponse(const Status& status) {
  return HttpResponse::Error(HttpStatusFor(status), StatusCodeName(status.code()),
                             status.message());
}

namespace {

constexpr std::string_view kMcpPath = "/mcp";

Result<json> ParseBody(const HttpRequest& request, bool allow_empty) {
  if (request.body.empty()) {
    if (allow_empty) return json::object();
    return Status::InvalidArgument("request body must be a JSON object");
  }
  const auto content_type = request.header("Content-Type");
  if (!content_type.empty() && content_type.find("application/json") == std::string_view::npos) {
    return Status::InvalidArgument("Content-Type must be application/json");
  }
  AIRLOCK_ASSIGN_OR_RETURN(json body, ParseStrictJson(request.body, "request body"));
  if (!body.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  return body;
}

Result<std::string> CommentFrom(const json& body) {
  static const std::set<std::string> kKnown = {"comment"};
  for (const auto& [key, value] : body.items()) {
    if (!kKnown.count(key)) return Status::InvalidArgument("unknown field '" + key + "'");
  }
  auto it = body.find("comment");
  if (it == body.end()) return std::string();
  if (!it->is_string()) return Status::InvalidArgument("comment must be a string");
  return it->get<std::string>();
}

// A suspend or resume body: {"reason": "..."} (required).
Result<std::string> ReasonFrom(const json& body) {
  for (const auto& [key, value] : body.items()) {
    if (key != "reason") return Status::InvalidArgument("unknown field '" + key + "'");
  }
  auto it = body.find("reason");
  if (it == body.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument("reason (a non-empty string) is required");
  }
  return it->get<std::string>();
}

// A whole decimal number, or nullopt.
std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

Result<size_t> LimitParam(const HttpRequest& request, size_t fallback, size_t max) {
  auto raw = request.query_param("limit");
  if (!raw) return fallback;
  const std::optional<uint64_t> value = ParseUnsigned(*raw);
  if (!value || *value == 0 || *value > max) {
    return Status::InvalidArgument("limit must be an integer between 1 and " + std::to_string(max));
  }
  return static_cast<size_t>(*value);
}

// A bounded text parameter: absent is empty.
Result<std::string> TextParam(const HttpRequest& request, const char* name, size_t max) {
  auto raw = request.query_param(name);
  if (!raw) return std::string();
  if (raw->empty() || raw->size() > max) {
    return Status::InvalidArgument(std::string(name) + " must be 1 to " + std::to_string(max) +
                                   " characters");
  }
  return std::string(*raw);
}

// An instant: RFC 3339 or Unix seconds, in microseconds; 0 when absent.
Result<int64_t> InstantParam(const HttpRequest& request, const char* name) {
  auto raw = request.query_param(name);
  if (!raw) return int64_t{0};
  if (auto at = ParseRfc3339Micros(*raw)) return *at;
  if (auto seconds = ParseUnsigned(*raw); seconds && *seconds > 0 && *seconds < (1ULL << 40)) {
    return static_cast<int64_t>(*seconds) * 1000000;
  }
  return Status::InvalidArgument(std::string(name) +
                                 " must be an RFC 3339 timestamp (e.g. 2026-12-06T09:30:00Z) or "
                                 "Unix seconds");
}

// Event types as a search names them: a comma-separated list of names, each
// exact or a family ("request.*").
Result<std::vector<std::string>> EventPatterns(const HttpRequest& request) {
  constexpr size_t kMaxPatterns = 16;
  constexpr size_t kMaxPatternBytes = 128;
  std::vector<std::string> patterns;
  auto raw = request.query_param("event");
  if (!raw) return patterns;
  const Status bad = Status::InvalidArgument(
      "event must list up to 16 event types, comma-separated, each a name such as "
      "request.approved or a family such as request.*");
  std::string_view rest = *raw;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view one = rest.substr(0, comma);
    const size_t star = one.find('*');
    const bool well_formed =
        !one.empty() && one.size() <= kMaxPatternBytes &&
        std::all_of(one.begin(), one.end(),
                    [](char c) {
                      return std::islower(static_cast<unsigned char>(c)) ||
                             std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                             c == '*';
                    }) &&
        (star == std::string_view::npos ||
         (star == one.size() - 1 && one.size() >= 3 && one[one.size() - 2] == '.'));
    if (!well_formed || patterns.size() == kMaxPatterns) return bad;
    patterns.emplace_back(one);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return patterns;
}

Result<AuditSearchQuery> ParseAuditSearch(const HttpRequest& request) {
  AuditSearchQuery query;
  AIRLOCK_ASSIGN_OR_RETURN(query.subject, TextParam(request, "subject", 256));
  AIRLOCK_ASSIGN_OR_RETURN(query.dataset, TextParam(request, "dataset", 256));
  AIRLOCK_ASSIGN_OR_RETURN(query.request_id, TextParam(request, "request", 64));
  AIRLOCK_ASSIGN_OR_RETURN(query.events, EventPatterns(request));
  AIRLOCK_ASSIGN_OR_RETURN(query.since_us, InstantParam(request, "since"));
  AIRLOCK_ASSIGN_OR_RETURN(query.until_us, InstantParam(request, "until"));
  if (query.since_us != 0 && query.until_us != 0 && query.since_us >= query.until_us) {
    return Status::InvalidArgument("since must be before until");
  }
  AIRLOCK_ASSIGN_OR_RETURN(query.limit, LimitParam(request, 100, 1000));
  if (auto token = request.query_param("page_token")) {
    query.resume = ParseUnsigned(*token);
    if (!query.resume) {
      return Status::InvalidArgument("page_token must be one a previous page handed out");
    }
  }
  return query;
}

HttpResponse FromResult(const Result<json>& result, unsigned ok_status = 200) {
  if (!result.ok()) return ErrorResponse(result.status());
  return HttpResponse::Json(ok_status, *result);
}

HttpResponse MethodNotAllowed(std::string_view allowed) {
  HttpResponse r = HttpResponse::Error(405, "method_not_allowed",
                                       "this resource allows " + std::string(allowed));
  r.headers.emplace_back("Allow", std::string(allowed));
  return r;
}

HttpResponse NotFound(std::string_view what = "no such resource") {
  return HttpResponse::Error(404, "not_found", what);
}

std::vector<RouteSpec> SpecsOf(const auto& table) {
  std::vector<RouteSpec> specs;
  specs.reserve(table.size());
  for (const auto& entry : table) specs.push_back(entry.spec);
  return specs;
}

}  // namespace

const std::vector<V1Api::RouteEntry>& V1Api::Table() {
  using A = RouteAccess;
  static const std::vector<RouteEntry> kTable = {
      {{"GET", "/healthz", A::kPublic}, &V1Api::Health},
      {{"GET", "/metrics", A::kPublic}, &V1Api::MetricsText},
      {{"GET", "/v1/openapi.json", A::kPublic}, &V1Api::OpenApi},
      {{"GET", "/console", A::kPublic, /*answers_on_io_thread=*/true}, &V1Api::ConsolePage},
      {{"GET", "/console/{file}", A::kPublic, /*answers_on_io_thread=*/true}, &V1Api::ConsoleFile},
      {{"GET", "/v1/me", A::kAuthenticated}, &V1Api::Me},
      {{"GET", "/v1/requests", A::kAuthenticated}, &V1Api::ListRequests},
      {{"POST", "/v1/requests", A::kAuthenticated}, &V1Api::CreateRequest},
      // One read from the state store's reader pool, a visibility check and
      // the view: answered on the I/O thread when authentication allows.
      {{"GET", "/v1/requests/{id}", A::kAuthenticated, /*answers_on_io_thread=*/true},
       &V1Api::GetRequest},
      {{"POST", "/v1/requests/{id}/approve", A::kAuthenticated}, &V1Api::Approve},
      {{"POST", "/v1/requests/{id}/deny", A::kAuthenticated}, &V1Api::Deny},
      {{"POST", "/v1/requests/{id}/revoke", A::kAuthenticated}, &V1Api::Revoke},
      {{"POST", "/v1/requests/{id}/extend", A::kAuthenticated}, &V1Api::Extend},
      {{"POST", "/v1/requests/{id}/credentials", A::kAuthenticated}, &V1Api::Credentials},
      {{"GET", "/v1/requests/{id}/results", A::kAuthenticated}, &V1Api::JobResults},
      {{"GET", "/v1/requests/{id}/results/{index}", A::kAuthenticated}, &V1Api::JobResultFile},
      {{"GET", "/v1/catalog", A::kAuthenticated}, &V1Api::Catalog},
      {{"GET", "/v1/plugins", A::kAuthenticated}, &V1Api::Plugins},
      {{"GET", "/v1/agents", A::kAuthenticated}, &V1Api::Agents},
      {{"POST", "/v1/agents/{name}/suspend", A::kAdmin}, &V1Api::SuspendAgent},
      {{"POST", "/v1/agents/{name}/resume", A::kAdmin}, &V1Api::ResumeAgent},
      {{"GET", "/v1/audit", A::kAuthenticated}, &V1Api::Audit},
      {{"GET", "/v1/events", A::kAuthenticated}, &V1Api::Events},
      {{"GET", "/v1/cluster", A::kPlatformAdmin}, &V1Api::Cluster},
      {{"POST", "/v1/admin/policy/reload", A::kPlatformAdmin}, &V1Api::ReloadPolicy},
      {{"POST", "/v1/peer/requests/{id}/query", A::kPeer}, &V1Api::PeerQuery},
      {{"GET", "/v1/peer/requests/{id}/tables", A::kPeer}, &V1Api::PeerTables},
      {{"POST", "/v1/peer/requests/{id}/credentials", A::kPeer}, &V1Api::PeerCredentials},
      {{"POST", "/v1/peer/requests/{id}/end", A::kPeer}, &V1Api::PeerEnd},
      {{"POST", "/v1/peer/requests/{id}/launch", A::kPeer}, &V1Api::PeerLaunch},
      {{"GET", "/v1/peer/requests/{id}/results/{index}", A::kPeer}, &V1Api::PeerJobResult},
      // The MCP endpoint for agents, and its OAuth protected-resource
      // metadata (RFC 9728: at the root and with the resource's path).
      {{"POST", "/mcp", A::kAuthenticated}, &V1Api::Mcp},
      {{"GET", "/.well-known/oauth-protected-resource", A::kPublic, /*answers_on_io_thread=*/true},
       &V1Api::McpMetadata},
      {{"GET", "/.well-known/oauth-protected-resource/mcp", A::kPublic,
        /*answers_on_io_thread=*/true},
       &V1Api::McpMetadata},
  };
  return kTable;
}

V1Api::V1Api(Dependencies deps)
    : d_(std::move(deps)), matcher_(SpecsOf(Table())), route_latency_(Table().size() + 1) {}

HttpResponse V1Api::Handle(const HttpRequest& request) const {
  const auto started = std::chrono::steady_clock::now();
  int route = -1;
  HttpResponse response = Dispatch(request, &route);
  if (!response.run_on_handler_pool) {
    CountStatus(response.status);
    ObserveLatency(route, response.status, started);
  }
  return response;
}

void V1Api::ObserveLatency(int route, unsigned status,
                           std::chrono::steady_clock::time_point started) const {
  if (d_.metrics == nullptr) return;
  const unsigned klass = status / 100;
  if (klass >= 6) return;
  const size_t index = route >= 0 ? static_cast<size_t>(route) : Table().size();
  std::atomic<Metrics::Histogram*>& slot = route_latency_[index][klass];
  Metrics::Histogram* histogram = slot.load(std::memory_order_acquire);
  if (histogram == nullptr) {
    // Routes are patterns, not paths: the label set stays small.
    const std::string method = route >= 0 ? std::string(Table()[index].spec.method) : "other";
    const std::string pattern = route >= 0 ? std::string(Table()[index].spec.pattern) : "unmatched";
    histogram =
        &d_.metrics->GetHistogram("airlock_http_request_duration_seconds",
                                  "HTTP API request handling time by route and status class",
                                  "method=\"" + method + "\",route=\"" + pattern + "\",code=\"" +
                                      std::to_string(klass) + "xx\"",
                                  Metrics::LatencyBuckets());
    slot.store(histogram, std::memory_order_release);
  }
  histogram->ObserveSince(started);
}

void V1Api::CountStatus(unsigned status) const {
  if (d_.metrics == nullptr) return;
  const unsigned klass = status / 100;
  if (klass >= status_counters_.size()) return;  // the server answers 500 instead
  Metrics::Counter* cached = status_counters_[klass].load(std::memory_order_acquire);
  if (cached == nullptr) {
    // Registration is idempotent: racing first uses find the same series.
    cached = &d_.metrics->Get("airlock_http_requests_total", "HTTP API requests by status class",
                              "counter", "code=\"" + std::to_string(klass) + "xx\"");
    status_counters_[klass].store(cached, std::memory_order_release);
  }
  cached->Add();
}

bool V1Api::IsPlatformAdmin(const Principal& caller) const {
  if (d_.tenancy != nullptr) return d_.tenancy->IsPlatformAdmin(caller);
  return std::any_of(d_.admin_groups.begin(), d_.admin_groups.end(),
                     [&](const std::string& g) { return caller.InGroup(g); });
}

bool V1Api::IsAdmin(const Principal& caller) const {
  if (d_.tenancy != nullptr) return d_.tenancy->IsAnyAdmin(caller);
  return IsPlatformAdmin(caller);
}

bool V1Api::AssignTenant(const HttpRequest& request, Principal* caller,
                         HttpResponse* refusal) const {
  if (d_.tenancy == nullptr) return true;
  const Status assigned = d_.tenancy->Assign(caller);
  if (assigned.ok()) return true;
  if (request.on_io_thread) {
    *refusal = HttpResponse::RunOnHandlerPool();
    return false;
  }
  (void)d_.audit->Append({{"event", "auth.refused"},
                          {"principal", {{"subject", caller->subject}}},
                          {"reason", assigned.message()},
                          {"method", request.method},
                          {"path", request.path},
                          {"remote_address", request.remote_address}});
  *refusal = ErrorResponse(assigned);
  return false;
}

Result<Principal> V1Api::Authenticate(const HttpRequest& request, HttpResponse* refusal) const {
  auto principal = d_.identity->Authenticate(request);
  if (principal.ok()) return principal;
  // The refusal is audited (a durable commit): not on an I/O thread.
  if (request.on_io_thread) {
    *refusal = HttpResponse::RunOnHandlerPool();
    return principal.status();
  }
  // Refusals are decision points too. The credential itself is never recorded.
  (void)d_.audit->Append({{"event", "auth.refused"},
                          {"reason", principal.status().message()},
                          {"method", request.method},
                          {"path", request.path},
                          {"remote_address", request.remote_address}});
  *refusal = ErrorResponse(principal.status());
  refusal->headers.emplace_back("WWW-Authenticate", "Bearer realm=\"airlock\"");
  return principal.status();
}

HttpResponse V1Api::Dispatch(const HttpRequest& request, int* route_index) const {
  const auto segments = PathSegments(request.path);
  const RouteMatcher::Match match = matcher_.Find(request.method, segments);
  *route_index = match.index;
  const RouteEntry* route = match.index >= 0 ? &Table()[match.index] : nullptr;

  // On an I/O thread only reads that cannot block are answered; everything
  // else (including refusals, which are audited) moves to the handler pool.
  if (request.on_io_thread && (route == nullptr || !route->spec.answers_on_io_thread ||
                               !d_.identity->answers_without_blocking())) {
    return HttpResponse::RunOnHandlerPool();
  }

  const bool in_api = segments.size() >= 2 && segments[0] == "v1";
  const bool is_public = route != nullptr ? route->spec.access == RouteAccess::kPublic
                                          : (match.path_is_public || !in_api);
  const bool from_peer = route != nullptr && route->spec.access == RouteAccess::kPeer;
  if (from_peer) {
    HttpResponse refusal;
    if (!AuthorizePeer(request, &refusal)) return refusal;
  }
  std::optional<Principal> caller;
  if (!is_public && !from_peer) {
    HttpResponse refusal;
    auto principal = Authenticate(request, &refusal);
    const bool mcp = route != nullptr && route->spec.pattern == kMcpPath;
    if (!principal.ok()) {
      // An agent is told where to learn how to get a token (MCP's
      // authorization specification).
      if (mcp && d_.mcp != nullptr && !refusal.run_on_handler_pool) {
        std::erase_if(refusal.headers, [](const auto& h) { return h.first == "WWW-Authenticate"; });
        refusal.headers.emplace_back("WWW-Authenticate", d_.mcp->Challenge(request));
      }
      return refusal;
    }
    caller = std::move(principal).value();
    if (HttpResponse refused; !AssignTenant(request, &*caller, &refused)) return refused;
    // A kind the identity source left unsaid is decided by the door.
    if (caller->kind_unsaid) {
      caller->kind = mcp ? PrincipalKind::kAgent : PrincipalKind::kHuman;
      caller->kind_unsaid = false;
    }
  }
  if (route == nullptr) {
    if (!match.allowed_methods.empty()) return MethodNotAllowed(match.allowed_methods);
    return NotFound();
  }
  if (const std::string_view id = match.params.Get("id"); !id.empty() && !ValidRequestId(id)) {
    return NotFound("no such request");
  }
  if (route->spec.access == RouteAccess::kAdmin && !IsAdmin(*caller)) {
    return ErrorResponse(Status::PermissionDenied("admin group membership required"));
  }
  if (route->spec.access == RouteAccess::kPlatformAdmin && !IsPlatformAdmin(*caller)) {
    const bool tenanted = d_.tenancy != nullptr && d_.tenancy->enabled();
    return ErrorResponse(Status::PermissionDenied(
        tenanted ? "platform admin group membership required (access.admin_groups)"
                 : "admin group membership required"));
  }
  // Fail closed: no new work while the audit log cannot record it.
  if (caller && request.method != "GET") {
    const Status audit = d_.audit->health();
    if (!audit.ok()) return ErrorResponse(Status::Unavailable(audit.message()));
  }
  const Call call{request, caller ? &*caller : nullptr, match.params};
  return (this->*(route->handler))(call);
}

HttpResponse V1Api::Mcp(const Call& call) const {
  if (d_.mcp == nullptr) return NotFound();
  return d_.mcp->Handle(call.request, *call.caller);
}

HttpResponse V1Api::McpMetadata(const Call& call) const {
  if (d_.mcp == nullptr) return NotFound();
  return HttpResponse::Json(200, d_.mcp->ResourceMetadata(call.request));
}

HttpResponse V1Api::Health(const Call&) const {
  const Status audit = d_.audit->health();
  if (!audit.ok()) {
    return HttpResponse::Json(503, {{"status", "unhealthy"}, {"reason", audit.message()}});
  }
  if (d_.state_health) {
    const Status state = d_.state_health();
    if (!state.ok()) {
      return HttpResponse::Json(
          503, {{"status", "unhealthy"}, {"reason", "state store: " + state.message()}});
    }
  }
  return HttpResponse::Json(200, {{"status", "ok"}});
}

HttpResponse V1Api::MetricsText(const Call&) const {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = d_.metrics->Render();
  return r;
}

HttpResponse V1Api::OpenApi(const Call&) const {
  HttpResponse r;
  r.body = d_.openapi;
  return r;
}

HttpResponse V1Api::CreateRequest(const Call& call) const {
  auto body = ParseBody(call.request, /*allow_empty=*/false);
  if (!body.ok()) return ErrorResponse(body.status());
  auto created = d_.requests->Create(*call.caller, *body);
  if (!created.ok() && created.status().code() == StatusCode::kNotFound) {
    // The resource exists; the body names datasets that do not.
    return HttpResponse::Error(422, "unknown_dataset", created.status().message());
  }
  return FromResult(created, 201);
}

HttpResponse V1Api::Events(const Call& call) const {
  if (d_.events == nullptr) return ErrorResponse(Status::NotFound("no event stream here"));
  // Where to resume: the SSE Last-Event-ID header, or ?after= (a client
  // that cannot set headers); from now on without either.
  std::string_view resume = call.request.header("Last-Event-ID");
  if (auto after = call.request.query_param("after"); resume.empty() && after) resume = *after;
  uint64_t after = 0;
  if (!resume.empty()) {
    const auto parsed = ParseUnsigned(resume);
    if (!parsed) {
      return ErrorResponse(Status::InvalidArgument("Last-Event-ID must be an event id (digits)"));
    }
    after = *parsed;
  }
  auto stream = d_.events->Open(*call.caller, after);
  if (!stream.ok()) return ErrorResponse(stream.status());
  HttpResponse response;
  response.content_type = "text/event-stream";
  response.stream = std::move(stream).value();
  return response;
}

HttpResponse V1Api::ListRequests(const Call& call) const {
  const HttpRequest& request = call.request;
  RequestListQuery query;
  if (auto state = request.query_param("state")) {
    query.state = ParseRequestState(*state);
    if (!query.state) {
      return ErrorResponse(Status::InvalidArgument("unknown state '" + std::string(*state) + "'"));
    }
  }
  if (auto mine = request.query_param("mine")) {
    if (*mine != "true" && *mine != "false") {
      return ErrorResponse(Status::InvalidArgument("mine must be true or false"));
    }
    query.mine = *mine == "true";
  }
  if (auto awaiting = request.query_param("awaiting")) {
    if (*awaiting != "me") return ErrorResponse(Status::InvalidArgument("awaiting must be me"));
    if (query.state || query.mine) {
      return ErrorResponse(Status::InvalidArgument("awaiting=me takes no state or mine"));
    }
    query.awaiting_me = true;
  }
  auto limit = LimitParam(request, 50, 500);
  if (!limit.ok()) return ErrorResponse(limit.status());
  query.limit = *limit;
  if (auto token = request.query_param("page_token")) query.page_token = std::string(*token);
  return FromResult(d_.requests->List(*call.caller, query));
}

HttpResponse V1Api::GetRequest(const Call& call) const {
  const bool on_io_thread = call.request.on_io_thread;
  auto view = d_.requests->GetText(*call.caller, call.id(), /*audit_probes=*/!on_io_thread);
  // A request this caller cannot see may be a probe of another tenant's,
  // which is audited: that answer comes from the handler pool.
  if (!view.ok() && on_io_thread && view.status().code() == StatusCode::kNotFound) {
    return HttpResponse::RunOnHandlerPool();
  }
  if (!view.ok()) return ErrorResponse(view.status());
  HttpResponse r;
  r.body = std::move(view).value();
  return r;
}

HttpResponse V1Api::Decide(const Call& call, DecisionAction action) const {
  auto body = ParseBody(call.request, /*allow_empty=*/true);
  if (!body.ok()) return ErrorResponse(body.status());
  auto comment = CommentFrom(*body);
  if (!comment.ok()) return ErrorResponse(comment.status());
  return FromResult((d_.requests->*action)(*call.caller, call.id(), *comment));
}

HttpResponse V1Api::Approve(const Call& call) const {
  return Decide(call, &RequestManager::Approve);
}

HttpResponse V1Api::Deny(const Call& call) const {
  return Decide(call, &RequestManager::Deny);
}

HttpResponse V1Api::Revoke(const Call& call) const {
  return Decide(call, &RequestManager::Revoke);
}

HttpResponse V1Api::Extend(const Call& call) const {
  auto body = ParseBody(call.request, /*allow_empty=*/false);
  if (!body.ok()) return ErrorResponse(body.status());
  return FromResult(d_.requests->Extend(*call.caller, call.id(), *body));
}

HttpResponse V1Api::Credentials(const Call& call) const {
  auto body = ParseBody(call.request, /*allow_empty=*/true);
  if (!body.ok()) return ErrorResponse(body.status());
  if (!body->empty()) return ErrorResponse(Status::InvalidArgument("no body expected"));
  return FromResult(d_.requests->CollectCredentials(*call.caller, call.id()));
}

HttpResponse V1Api::JobResults(const Call& call) const {
  return FromResult(d_.requests->JobResults(*call.caller, call.id()));
}

std::optional<size_t> JobResultIndex(std::string_view text) {
  size_t index = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || text.size() > 6) {
    return std::nullopt;
  }
  return index;
}

HttpResponse JobResultResponse(std::string path, bool temporary) {
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  r.body_file = std::move(path);
  r.body_file_is_temporary = temporary;
  return r;
}

HttpResponse V1Api::JobResultFile(const Call& call) const {
  const std::optional<size_t> index = JobResultIndex(call.params.Get("index"));
  if (!index) return NotFound("no such job result");
  auto file = d_.requests->JobResultFileOf(*call.caller, call.id(), *index);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kFailedPrecondition) {
      return HttpResponse::Error(410, "gone", file.status().message());
    }
    return ErrorResponse(file.status());
  }
  return JobResultResponse(std::move(file->path), file->temporary);
}

// The console's page and files (kernel/console/web/*), with a policy that
// lets them run nothing but themselves.
HttpResponse ConsoleAssetResponse(const ConsoleAsset& asset, const std::string& policy) {
  HttpResponse r;
  r.content_type = std::string(asset.content_type);
  r.body = std::string(asset.body);
  r.headers = {{"Content-Security-Policy",
                policy.empty() ? std::string(kConsoleContentSecurityPolicy) : policy},
               {"X-Frame-Options", "DENY"},
               {"Referrer-Policy", "no-referrer"},
               {"Cross-Origin-Opener-Policy", "same-origin"},
               {"Cross-Origin-Resource-Policy", "same-origin"}};
  return r;
}

HttpResponse V1Api::ConsolePage(const Call&) const {
  const ConsoleAsset* page = FindConsoleAsset("index.html");
  if (page == nullptr) return NotFound("this kernel was built without its console");
  return ConsoleAssetResponse(*page, d_.console_policy);
}

HttpResponse V1Api::ConsoleFile(const Call& call) const {
  if (call.params.Get("file") == "config.json") {
    // What the page needs to know before anyone signs in; nothing secret.
    HttpResponse r = HttpResponse::Json(200, d_.console_config);
    r.headers = {{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"}};
    return r;
  }
  const ConsoleAsset* asset = FindConsoleAsset(call.params.Get("file"));
  if (asset == nullptr) return NotFound("no such console file");
  return ConsoleAssetResponse(*asset, d_.console_policy);
}

// Who the caller is, as the kernel sees them: what the console and the CLI
// show, and which of their pages apply.
HttpResponse V1Api::Me(const Call& call) const {
  json me = call.caller->ToJson();
  me["admin"] = IsAdmin(*call.caller);
  if (d_.tenancy != nullptr && d_.tenancy->enabled()) {
    me["platform_admin"] = IsPlatformAdmin(*call.caller);
  }
  return HttpResponse::Json(200, me);
}

HttpResponse V1Api::Catalog(const Call& call) const {
  const auto audience = call.request.query_param("for");
  if (!audience) return HttpResponse::Json(200, d_.catalog(*call.caller));
  if (*audience != "me") return ErrorResponse(Status::InvalidArgument("for must be me"));
  return FromResult(d_.requests->PreviewCatalog(*call.caller, d_.catalog(*call.caller)));
}

HttpResponse V1Api::Plugins(const Call&) const {
  return HttpResponse::Json(200, d_.plugins);
}

HttpResponse V1Api::Agents(const Call& call) const {
  if (!d_.agents) return ErrorResponse(Status::NotFound("no agents are configured"));
  json agents = d_.requests->MarkSuspendedAgents(d_.agents());
  if (d_.tenancy != nullptr) agents = d_.tenancy->VisibleAgents(*call.caller, std::move(agents));
  return HttpResponse::Json(200, agents);
}

HttpResponse V1Api::SiteAct(const Call& call, DecisionAction action) const {
  auto body = ParseBody(call.request, /*allow_empty=*/false);
  if (!body.ok()) return ErrorResponse(body.status());
  auto reason = ReasonFrom(*body);
  if (!reason.ok()) return ErrorResponse(reason.status());
  return FromResult(
      (d_.requests->*action)(*call.caller, std::string(call.params.Get("name")), *reason));
}

HttpResponse V1Api::SuspendAgent(const Call& call) const {
  return SiteAct(call, &RequestManager::SuspendSite);
}

HttpResponse V1Api::ResumeAgent(const Call& call) const {
  return SiteAct(call, &RequestManager::ResumeSite);
}

HttpResponse V1Api::Cluster(const Call&) const {
  if (!d_.cluster) return ErrorResponse(Status::NotFound("no cluster view in this kernel"));
  return FromResult(d_.cluster());
}

HttpResponse V1Api::Audit(const Call& call) const {
  const HttpRequest& request = call.request;
  auto id = request.query_param("request");
  if (id && !ValidRequestId(*id)) {
    return ErrorResponse(Status::InvalidArgument("request must be a request id"));
  }
  static constexpr const char* kSearchParams[] = {"subject", "dataset", "event",
                                                  "since",   "until",   "page_token"};
  const bool search = !id || std::any_of(std::begin(kSearchParams), std::end(kSearchParams),
                                         [&](const char* p) { return request.query_param(p); });
  if (!search) {
    // One request's whole trail, oldest first.
    auto limit = LimitParam(request, 1000, 10000);
    if (!limit.ok()) return ErrorResponse(limit.status());
    return FromResult(d_.requests->AuditTrail(*call.caller, std::string(*id), *limit));
  }
  auto query = ParseAuditSearch(request);
  if (!query.ok()) return ErrorResponse(query.status());
  return FromResult(d_.requests->SearchAudit(*call.caller, *query));
}

HttpResponse V1Api::ReloadPolicy(const Call&) const {
  if (!d_.reload_policy) return ErrorResponse(Status::NotImplemented("policy reload"));
  const Status reloaded = d_.reload_policy();
  if (!reloaded.ok()) {
    return HttpResponse::Error(
        422, "invalid_policy",
        "policy not reloaded; the previous policy stays in force: " + reloaded.message());
  }
  return HttpResponse::Json(200, {{"reloaded", true}});
}

}  // namespace airlock
