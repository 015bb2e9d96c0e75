#include "kernel/api/v1_api.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "kernel/api/identity_chain.h"
#include "kernel/audit/audit_log.h"
#include "kernel/core/metrics.h"
#include "kernel/core/request_manager.h"

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

// Splits "/v1/requests/req_1/approve" into {"v1","requests","req_1","approve"}.
std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < path.size()) {
    while (start < path.size() && path[start] == '/') ++start;
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end;
  }
  return out;
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

Result<json> ParseBody(const HttpRequest& request, bool allow_empty) {
  if (request.body.empty()) {
    if (allow_empty) return json::object();
    return Status::InvalidArgument("request body must be a JSON object");
  }
  const auto content_type = request.header("Content-Type");
  if (!content_type.empty() && content_type.find("application/json") == std::string_view::npos) {
    return Status::InvalidArgument("Content-Type must be application/json");
  }
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!body.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  return body;
}

Result<std::string> CommentFrom(const json& body) {
  static const std::set<std::string> kKnown = {"comment"};
  for (const auto& [key, value] : body.items()) {
    if (!kKnown.count(key)) return Status::InvalidArgument("unknown field '" + key + "'");
  }
  auto it = body.find("comment");
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Status::InvalidArgument("comment must be a string");
  return it->get<std::string>();
}

Result<size_t> LimitParam(const HttpRequest& request, size_t fallback, size_t max) {
  auto raw = request.query_param("limit");
  if (!raw) return fallback;
  size_t value = 0;
  auto [ptr, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), value);
  if (ec != std::errc() || ptr != raw->data() + raw->size() || value == 0 || value > max) {
    return Status::InvalidArgument("limit must be an integer between 1 and " + std::to_string(max));
  }
  return value;
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

}  // namespace

V1Api::V1Api(Dependencies deps) : d_(std::move(deps)) {}

HttpResponse V1Api::Handle(const HttpRequest& request) const {
  HttpResponse response = Route(request);
  if (!response.run_on_handler_pool) CountStatus(response.status);
  return response;
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

bool V1Api::AnswersOnIoThread(const HttpRequest& request,
                              const std::vector<std::string_view>& seg) const {
  // GET /v1/requests/{id}: one read from the state store's reader pool, a
  // visibility check and the view; authentication must not block either.
  return request.method == "GET" && seg.size() == 3 && seg[0] == "v1" && seg[1] == "requests" &&
         d_.identity->answers_without_blocking();
}

// GET /v1/requests/{id}/results and /v1/requests/{id}/results/{index}.
HttpResponse V1Api::JobResults(const HttpRequest& request, const Principal& caller,
                               const std::string& id,
                               const std::vector<std::string_view>& seg) const {
  if (request.method != "GET") return MethodNotAllowed("GET");
  if (seg.size() == 4) return FromResult(d_.requests->JobResults(caller, id));
  if (seg.size() != 5) return HttpResponse::Error(404, "not_found", "no such resource");
  size_t index = 0;
  const std::string_view text = seg[4];
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || text.size() > 6) {
    return HttpResponse::Error(404, "not_found", "no such job result");
  }
  auto file = d_.requests->JobResultFile(caller, id, index);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kFailedPrecondition) {
      return HttpResponse::Error(410, "gone", file.status().message());
    }
    return ErrorResponse(file.status());
  }
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  r.body_file = *file;
  return r;
}

HttpResponse V1Api::Route(const HttpRequest& request) const {
  const auto seg = Segments(request.path);
  const std::string& method = request.method;
  if (request.on_io_thread && !AnswersOnIoThread(request, seg)) {
    return HttpResponse::RunOnHandlerPool();
  }

  // Unauthenticated endpoints: health, metrics and the API description.
  if (seg.size() == 1 && seg[0] == "healthz") {
    if (method != "GET") return MethodNotAllowed("GET");
    const Status audit = d_.audit->health();
    if (!audit.ok()) {
      return HttpResponse::Json(503, {{"status", "unhealthy"}, {"reason", audit.message()}});
    }
    return HttpResponse::Json(200, {{"status", "ok"}});
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    if (method != "GET") return MethodNotAllowed("GET");
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = d_.metrics->Render();
    return r;
  }
  if (seg.size() == 2 && seg[0] == "v1" && seg[1] == "openapi.json") {
    if (method != "GET") return MethodNotAllowed("GET");
    HttpResponse r;
    r.body = d_.openapi;
    return r;
  }
  if (seg.empty() || seg[0] != "v1" || seg.size() < 2) {
    return HttpResponse::Error(404, "not_found", "no such resource");
  }

  auto principal = d_.identity->Authenticate(request);
  if (!principal.ok()) {
    // The refusal is audited (a durable commit): not on an I/O thread.
    if (request.on_io_thread) return HttpResponse::RunOnHandlerPool();
    // Refusals are decision points too. The credential itself is never recorded.
    (void)d_.audit->Append({{"event", "auth.refused"},
                            {"reason", principal.status().message()},
                            {"method", request.method},
                            {"path", request.path},
                            {"remote_address", request.remote_address}});
    HttpResponse r = ErrorResponse(principal.status());
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"airlock\"");
    return r;
  }
  const Principal& caller = *principal;

  // Fail closed: no new work while the audit log cannot record it.
  if (method != "GET") {
    const Status audit = d_.audit->health();
    if (!audit.ok()) return ErrorResponse(Status::Unavailable(audit.message()));
  }

  const std::string_view resource = seg[1];
  if (resource == "requests") {
    if (seg.size() == 2) {
      if (method == "POST") {
        auto body = ParseBody(request, /*allow_empty=*/false);
        if (!body.ok()) return ErrorResponse(body.status());
        auto created = d_.requests->Create(caller, *body);
        if (!created.ok() && created.status().code() == StatusCode::kNotFound) {
          // The resource exists; the body names datasets that do not.
          return HttpResponse::Error(422, "unknown_dataset", created.status().message());
        }
        return FromResult(created, 201);
      }
      if (method == "GET") {
        RequestListQuery query;
        if (auto state = request.query_param("state")) {
          query.state = ParseRequestState(*state);
          if (!query.state) {
            return ErrorResponse(
                Status::InvalidArgument("unknown state '" + std::string(*state) + "'"));
          }
        }
        if (auto mine = request.query_param("mine")) {
          if (*mine != "true" && *mine != "false") {
            return ErrorResponse(Status::InvalidArgument("mine must be true or false"));
          }
          query.mine = *mine == "true";
        }
        auto limit = LimitParam(request, 50, 500);
        if (!limit.ok()) return ErrorResponse(limit.status());
        query.limit = *limit;
        if (auto token = request.query_param("page_token")) query.page_token = std::string(*token);
        return FromResult(d_.requests->List(caller, query));
      }
      return MethodNotAllowed("GET, POST");
    }
    const std::string id(seg[2]);
    if (!ValidRequestId(id)) return HttpResponse::Error(404, "not_found", "no such request");
    if (seg.size() == 3) {
      if (method != "GET") return MethodNotAllowed("GET");
      auto view = d_.requests->GetText(caller, id);
      if (!view.ok()) return ErrorResponse(view.status());
      HttpResponse r;
      r.body = std::move(view).value();
      return r;
    }
    if (seg.size() >= 4 && seg[3] == "results") return JobResults(request, caller, id, seg);
    if (seg.size() == 4) {
      const std::string_view action = seg[3];
      if (action != "approve" && action != "deny" && action != "revoke" &&
          action != "credentials") {
        return HttpResponse::Error(404, "not_found", "no such action");
      }
      if (method != "POST") return MethodNotAllowed("POST");
      auto body = ParseBody(request, /*allow_empty=*/true);
      if (!body.ok()) return ErrorResponse(body.status());
      if (action == "credentials") {
        if (!body->empty()) return ErrorResponse(Status::InvalidArgument("no body expected"));
        return FromResult(d_.requests->CollectCredentials(caller, id));
      }
      auto comment = CommentFrom(*body);
      if (!comment.ok()) return ErrorResponse(comment.status());
      if (action == "approve") return FromResult(d_.requests->Approve(caller, id, *comment));
      if (action == "deny") return FromResult(d_.requests->Deny(caller, id, *comment));
      return FromResult(d_.requests->Revoke(caller, id, *comment));
    }
    return HttpResponse::Error(404, "not_found", "no such resource");
  }
  if (resource == "catalog" && seg.size() == 2) {
    if (method != "GET") return MethodNotAllowed("GET");
    return HttpResponse::Json(200, d_.catalog);
  }
  if (resource == "plugins" && seg.size() == 2) {
    if (method != "GET") return MethodNotAllowed("GET");
    return HttpResponse::Json(200, d_.plugins);
  }
  if (resource == "agents" && seg.size() == 2) {
    if (method != "GET") return MethodNotAllowed("GET");
    if (!d_.agents) return ErrorResponse(Status::NotFound("no agents are configured"));
    return HttpResponse::Json(200, d_.agents());
  }
  if (resource == "audit" && seg.size() == 2) {
    if (method != "GET") return MethodNotAllowed("GET");
    auto id = request.query_param("request");
    if (!id || !ValidRequestId(*id)) {
      return ErrorResponse(Status::InvalidArgument("query parameter request=<id> is required"));
    }
    auto limit = LimitParam(request, 1000, 10000);
    if (!limit.ok()) return ErrorResponse(limit.status());
    return FromResult(d_.requests->AuditTrail(caller, std::string(*id), *limit));
  }
  if (resource == "admin" && seg.size() == 4 && seg[2] == "policy" && seg[3] == "reload") {
    if (method != "POST") return MethodNotAllowed("POST");
    const bool admin = std::any_of(d_.admin_groups.begin(), d_.admin_groups.end(),
                                   [&](const std::string& g) { return caller.InGroup(g); });
    if (!admin) return ErrorResponse(Status::PermissionDenied("admin group membership required"));
    if (!d_.reload_policy) return ErrorResponse(Status::NotImplemented("policy reload"));
    const Status reloaded = d_.reload_policy();
    if (!reloaded.ok()) {
      return HttpResponse::Error(
          422, "invalid_policy",
          "policy not reloaded; the previous policy stays in force: " + reloaded.message());
    }
    return HttpResponse::Json(200, {{"reloaded", true}});
  }
  return HttpResponse::Error(404, "not_found", "no such resource");
}

}  // namespace airlock
