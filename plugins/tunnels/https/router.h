// Decides what to do with one request, without doing any I/O: answer it at
// once (explorer assets, session, 404, 405, 401, 410, 429, 400...) or
// dispatch it to a query thread.
// Checks run in this order: path (404), endpoint (unknown 404 / revoked 410),
// method (405), [explorer assets are answered here, without a credential],
// credential (401), window (401 expired), the endpoint's connection share
// (429 too_many_connections), rate limit (429 rate_limited),
// concurrency (429 too_many_concurrent_queries), format and body (400).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "airlock/cpp/host.hpp"
#include "config.h"
#include "endpoint.h"
#include "http_util.h"

namespace airlock::tunnels::https {

struct Dispatch {
  std::shared_ptr<EndpointState> endpoint;
  Action action;                              // kQuery, kTables or kTable
  std::string sql;                            // kQuery only
  ResultFormat format = ResultFormat::kJson;  // kQuery only
  std::optional<std::string> table;           // kTable only
  // Declared after `endpoint`, so it is released first.
  std::optional<EndpointState::JobSlot> slot;
};

struct RouteResult {
  std::optional<Response> response;  // answer now
  std::optional<Dispatch> dispatch;  // or run this on a query thread
};

// Seconds since the epoch by the host's clock (which tests may control),
// falling back to the system clock when the host offers none.
int64_t NowUnixSeconds(const sdk::Host& host);

class RequestRouter {
 public:
  RequestRouter(EndpointRegistry& registry, const HttpsTunnelConfig& config, sdk::Host host)
      : registry_(registry), config_(config), host_(std::move(host)) {}

  // `session` is bound to the endpoint the request names (so closing the
  // endpoint drops it); `remote` is used in log lines only.
  RouteResult Handle(const Request& request, const std::shared_ptr<SessionHandle>& session,
                     std::string_view remote) const;

 private:
  Response SessionInfo(const EndpointState& endpoint, unsigned version, bool keep_alive) const;

  EndpointRegistry& registry_;
  const HttpsTunnelConfig& config_;
  sdk::Host host_;
};

}  // namespace airlock::tunnels::https
