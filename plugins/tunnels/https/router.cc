#include "router.h"

#include <chrono>

#include "explorer_assets.h"

namespace airlock::tunnels::https {
namespace {

RouteResult Answer(Response response) {
  RouteResult result;
  result.response = std::move(response);
  return result;
}

}  // namespace

int64_t NowUnixSeconds(const sdk::Host& host) {
  const int64_t micros = host.NowMicros();
  if (micros > 0) return micros / 1'000'000;
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Response RequestRouter::SessionInfo(const EndpointState& endpoint, unsigned version,
                                    bool keep_alive) const {
  const Json body{{"request_id", endpoint.request_id()},
                  {"principal", endpoint.subject()},
                  {"expires_at", endpoint.not_after()},
                  {"limits",
                   {{"max_rows", config_.max_rows},
                    {"query_timeout_ms", config_.query_timeout.count()},
                    {"rate_limit_per_minute", config_.rate_limit_per_minute},
                    {"max_concurrent_queries", endpoint.max_concurrent_jobs()}}}};
  return JsonResponse(http::status::ok, body.dump(-1, ' ', false, Json::error_handler_t::replace),
                      version, keep_alive);
}

RouteResult RequestRouter::Handle(const Request& request,
                                  const std::shared_ptr<SessionHandle>& session,
                                  std::string_view remote) const {
  const unsigned version = request.version();
  const bool keep_alive = request.keep_alive();
  const auto error = [&](http::status status, std::string_view code, std::string_view message) {
    return Answer(JsonError(status, code, message, version, keep_alive));
  };

  const std::string_view target(request.target().data(), request.target().size());
  auto route = ParseTarget(target);
  if (!route.has_value()) return error(http::status::not_found, "not_found", "no such resource");

  std::optional<sdk::CloseReason> closed;
  auto endpoint = registry_.Find(route->endpoint_id, &closed);
  if (endpoint == nullptr) {
    if (closed) return Answer(ClosedError(*closed, version, keep_alive));
    return error(http::status::not_found, "not_found", "no such endpoint");
  }
  if (endpoint->Bind(session) != sdk::tunnel::Endpoint::BindResult::kBound) {
    return Answer(ClosedError(endpoint->close_reason(), version, keep_alive));
  }

  const http::verb wanted = MethodFor(route->action);
  if (request.method() != wanted) {
    auto res =
        JsonError(http::status::method_not_allowed, "method_not_allowed",
                  std::string("use ") + std::string(http::to_string(wanted)), version, keep_alive);
    res.set(http::field::allow, http::to_string(wanted));
    return Answer(std::move(res));
  }

  if (IsPublicAsset(route->action)) {
    return Answer(ExplorerResponse(route->action, route->endpoint_id, version, keep_alive));
  }

  const auto token = BearerToken(request);
  if (!token.has_value()) {
    auto res = JsonError(http::status::unauthorized, "unauthenticated",
                         "send the endpoint credential as 'Authorization: Bearer <credential>'",
                         version, keep_alive);
    res.set(http::field::www_authenticate, "Bearer realm=\"airlock\"");
    return Answer(std::move(res));
  }
  if (!endpoint->Authenticate(*token)) {
    host_.Warn("tunnel endpoint '" + endpoint->request_id() + "': credential refused (from " +
               std::string(remote) + ")");
    auto res = JsonError(http::status::unauthorized, "unauthenticated",
                         "the credential is not valid for this endpoint", version, keep_alive);
    res.set(http::field::www_authenticate, "Bearer realm=\"airlock\", error=\"invalid_token\"");
    return Answer(std::move(res));
  }
  // The window binds the credential by itself: refused after not_after even
  // if the kernel has not closed the endpoint yet.
  if (NowUnixSeconds(host_) > endpoint->not_after()) {
    return Answer(ClosedError(sdk::CloseReason::kWindowEnded, version, keep_alive));
  }
  // A valid credential: the connection now counts against this endpoint's
  // own share, not the pool every unauthenticated client draws from.
  if (!session->ClaimEndpointShare(endpoint->request_id())) {
    auto res = JsonError(http::status::too_many_requests, "too_many_connections",
                         "this endpoint already has " +
                             std::to_string(config_.connections.max_connections_per_endpoint) +
                             " connections open (max_connections_per_endpoint); reuse one",
                         version, /*keep_alive=*/false);
    res.set(http::field::retry_after, "1");
    return Answer(std::move(res));
  }
  int64_t retry_after = 0;
  if (!endpoint->rate_limiter().TryAcquire(RateLimiter::Clock::now(), &retry_after)) {
    auto res = JsonError(http::status::too_many_requests, "rate_limited",
                         "more than " + std::to_string(config_.rate_limit_per_minute) +
                             " requests per minute for this credential",
                         version, keep_alive);
    res.set(http::field::retry_after, std::to_string(retry_after));
    return Answer(std::move(res));
  }

  if (route->action == Action::kSession) {
    return Answer(SessionInfo(*endpoint, version, keep_alive));
  }

  Dispatch dispatch{endpoint, route->action, {}, ResultFormat::kJson, std::nullopt, std::nullopt};
  if (route->action == Action::kQuery) {
    auto format = NegotiateFormat(request);
    if (!format.ok()) {
      return error(http::status::bad_request, "invalid_request", format.status().message());
    }
    dispatch.format = *format;
    auto sql = ParseQueryBody(request);
    if (!sql.ok()) {
      return error(http::status::bad_request, "invalid_request", sql.status().message());
    }
    dispatch.sql = std::move(sql).value();
  } else if (route->action == Action::kTable) {
    dispatch.table = std::move(route->table);
  }
  auto slot = endpoint->TryStartJob();
  if (!slot.has_value()) {
    auto res =
        JsonError(http::status::too_many_requests, "too_many_concurrent_queries",
                  "this credential already has " + std::to_string(endpoint->max_concurrent_jobs()) +
                      " queries running (max_concurrent_queries); wait for one to finish",
                  version, keep_alive);
    res.set(http::field::retry_after, "1");
    return Answer(std::move(res));
  }
  dispatch.slot.emplace(std::move(*slot));
  RouteResult result;
  result.dispatch.emplace(std::move(dispatch));
  return result;
}

}  // namespace airlock::tunnels::https
