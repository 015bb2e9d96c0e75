#include "cli/api.h"

#include "kernel/common/http_call.h"

namespace airlock::cli {

Status StatusForAnswer(long http_status, const std::string& body) {
  const auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string message = parsed.is_object() ? parsed.value("message", "") : "";
  if (message.empty()) message = "the server answered " + std::to_string(http_status);
  switch (http_status) {
    case 400:
      return Status::InvalidArgument(message);
    case 401:
      return Status::Unauthenticated(message + " (sign in again: airlock login)");
    case 403:
      return Status::PermissionDenied(message);
    case 404:
    case 422:
      return Status::NotFound(message);
    case 409:
      return Status::Conflict(message);
    case 410:
      return Status::FailedPrecondition(message);
    case 429:
      return Status::ResourceExhausted(message);
    case 503:
      return Status::Unavailable(message);
    default:
      return Status::Internal(message);
  }
}

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kUnauthenticated:
      return kExitNotSignedIn;
    case StatusCode::kPermissionDenied:
      return kExitRefused;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kConflict:
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return kExitConflict;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    default:
      return kExitFailed;
  }
}

Status Api::Ready() const {
  if (settings_.server.empty()) {
    return Status::Unauthenticated("no server yet: airlock login --server https://HOST:PORT");
  }
  if (settings_.token.empty()) return Status::Unauthenticated("not signed in: airlock login");
  return Status::Ok();
}

Result<nlohmann::json> Api::Get(const std::string& path) const {
  return Call("GET", path, "");
}

Result<nlohmann::json> Api::Post(const std::string& path, const nlohmann::json& body) const {
  return Call("POST", path, body.dump());
}

Result<nlohmann::json> Api::Call(const std::string& method, const std::string& path,
                                 const std::string& body) const {
  AIRLOCK_RETURN_IF_ERROR(Ready());
  HttpCall call;
  call.method = method;
  std::string base = settings_.server;
  while (!base.empty() && base.back() == '/') base.pop_back();
  call.url = base + path;
  call.headers = {{"Authorization", "Bearer " + settings_.token}, {"Accept", "application/json"}};
  if (method != "GET") call.headers.emplace_back("Content-Type", "application/json");
  call.body = body;
  call.ca_file = settings_.ca_file;
  auto answer = HttpSend(call);
  if (!answer.ok()) {
    return Status::Unavailable("cannot reach " + base + ": " + answer.status().message());
  }
  if (answer->status < 200 || answer->status >= 300) {
    return StatusForAnswer(answer->status, answer->body);
  }
  if (answer->body.empty()) return nlohmann::json::object();
  auto parsed = nlohmann::json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Status::Internal("the server's answer is not JSON");
  return parsed;
}

}  // namespace airlock::cli
