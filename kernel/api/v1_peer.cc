// The owner side of the peer link (kernel/core/peer_client.h): calls another
// kernel replica makes for a request whose enclave lives here. They carry no
// principal: the replica that took the client's call authenticated and
// authorized it, and proves it is a replica with the shared peer secret.
#include <cctype>

#include "kernel/api/v1_api.h"
#include "kernel/audit/audit_log.h"
#include "kernel/common/crypto.h"
#include "kernel/common/strict_json.h"
#include "kernel/core/peer_client.h"
#include "kernel/core/peer_result.h"
#include "kernel/core/request_manager.h"

namespace airlock {

using nlohmann::json;

namespace {

constexpr size_t kMaxTransportBytes = 64;

// The replica that forwarded the call, as it names itself (for the audit).
std::string ViaReplica(const HttpRequest& request) {
  const std::string_view via = request.header("X-Airlock-Replica");
  if (via.empty() || via.size() > 64) return "unnamed";
  for (char c : via) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return "unnamed";
    }
  }
  return std::string(via);
}

Result<json> PeerBody(const HttpRequest& request) {
  if (request.body.empty()) return Status::InvalidArgument("request body must be a JSON object");
  AIRLOCK_ASSIGN_OR_RETURN(json body, ParseStrictJson(request.body, "request body"));
  if (!body.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  return body;
}

Result<std::string> StringField(const json& body, const char* key, size_t max_bytes) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_string()) {
    return Status::InvalidArgument(std::string(key) + " must be a string");
  }
  std::string value = it->get<std::string>();
  if (value.empty() || value.size() > max_bytes) {
    return Status::InvalidArgument(std::string(key) + " must be 1.." + std::to_string(max_bytes) +
                                   " bytes");
  }
  return value;
}

}  // namespace

bool V1Api::AuthorizePeer(const HttpRequest& request, HttpResponse* refusal) const {
  if (!d_.peer_secret) {
    *refusal = HttpResponse::Error(404, "not_found", "no such resource");
    return false;
  }
  const std::string_view header = request.header("Authorization");
  constexpr std::string_view kScheme = "Bearer ";
  const bool presented = header.size() > kScheme.size() && header.starts_with(kScheme);
  // Compared as digests: constant time whatever the lengths.
  if (presented && ConstantTimeEquals(Sha256Hex(header.substr(kScheme.size())),
                                      Sha256Hex(d_.peer_secret->Reveal()))) {
    request.MarkAuthenticated();
    return true;
  }
  (void)d_.audit->Append({{"event", "peer.refused"},
                          {"reason", presented ? "wrong peer secret" : "no peer secret presented"},
                          {"method", request.method},
                          {"path", request.path},
                          {"remote_address", request.remote_address}});
  *refusal = ErrorResponse(Status::Unauthenticated("this route is for kernel replicas"));
  return false;
}

HttpResponse V1Api::PeerQuery(const Call& call) const {
  auto body = PeerBody(call.request);
  if (!body.ok()) return ErrorResponse(body.status());
  auto sql = StringField(*body, "sql", call.request.body.size());
  if (!sql.ok()) return ErrorResponse(sql.status());
  auto transport = StringField(*body, "transport", kMaxTransportBytes);
  if (!transport.ok()) return ErrorResponse(transport.status());
  PeerResultEncoder result(kMaxPeerResultBytes);
  const Status ran =
      d_.requests->PeerQuery(call.id(), *sql, *transport, ViaReplica(call.request), result);
  if (!ran.ok()) return ErrorResponse(ran);
  HttpResponse response;
  response.content_type = std::string(kPeerResultContentType);
  response.body = result.Take();
  return response;
}

HttpResponse V1Api::PeerTables(const Call& call) const {
  auto tables = d_.requests->PeerTables(call.id());
  if (!tables.ok()) return ErrorResponse(tables.status());
  return HttpResponse::Json(200, *tables);
}

HttpResponse V1Api::PeerCredentials(const Call& call) const {
  auto body = PeerBody(call.request);
  if (!body.ok()) return ErrorResponse(body.status());
  auto subject = StringField(*body, "subject", 1024);
  if (!subject.ok()) return ErrorResponse(subject.status());
  auto grant = d_.requests->PeerCredentials(call.id(), *subject, ViaReplica(call.request));
  if (!grant.ok()) return ErrorResponse(grant.status());
  return HttpResponse::Json(200, *grant);
}

HttpResponse V1Api::PeerEnd(const Call& call) const {
  auto body = PeerBody(call.request);
  if (!body.ok()) return ErrorResponse(body.status());
  const json cause = body->value("cause", json());
  if (!cause.is_number_integer())
    return ErrorResponse(Status::InvalidArgument("cause must be an integer"));
  // An unknown cause is told as a revocation (as the tunnel ABI says).
  airlock_type_close_reason reason = AIRLOCK_CLOSE_REVOKED;
  for (airlock_type_close_reason known : {AIRLOCK_CLOSE_REVOKED, AIRLOCK_CLOSE_WINDOW_ENDED,
                                          AIRLOCK_CLOSE_SHUTDOWN, AIRLOCK_CLOSE_FAILED}) {
    if (cause.get<int64_t>() == known) reason = known;
  }
  const Status ended = d_.requests->PeerEnd(call.id(), reason);
  if (!ended.ok()) return ErrorResponse(ended);
  return HttpResponse::Json(200, {{"request_id", call.id()}, {"ended", true}});
}

HttpResponse V1Api::PeerLaunch(const Call& call) const {
  if (auto body = PeerBody(call.request); !body.ok()) return ErrorResponse(body.status());
  const Status launched = d_.requests->PeerLaunch(call.id());
  if (!launched.ok()) return ErrorResponse(launched);
  return HttpResponse::Json(200, {{"request_id", call.id()}, {"launched", true}});
}

HttpResponse V1Api::PeerJobResult(const Call& call) const {
  const std::optional<size_t> index = JobResultIndex(call.params.Get("index"));
  if (!index) return ErrorResponse(Status::NotFound("no such job result"));
  auto path = d_.requests->PeerJobResultPath(call.id(), *index);
  if (!path.ok()) return ErrorResponse(path.status());
  return JobResultResponse(std::move(*path), /*temporary=*/true);
}

}  // namespace airlock
