// The kernel's HTTP API (v1) as a pure function from request to response:
// routing, authentication, input validation and error mapping. No socket I/O
// here (see http_server.h); see docs/api/openapi.json for the contract.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/api/http_types.h"
#include "kernel/core/metrics.h"

namespace airlock {

class AuditLog;
class IdentityChain;
class RequestManager;

// HTTP status for a Status code (400, 401, 403, 404, 409, 422, 429, 503, ...).
unsigned HttpStatusFor(const Status& status);
// {"error": "<code>", "message": "..."} with the fitting status.
HttpResponse ErrorResponse(const Status& status);

class V1Api {
 public:
  struct Dependencies {
    RequestManager* requests = nullptr;
    const IdentityChain* identity = nullptr;
    AuditLog* audit = nullptr;
    Metrics* metrics = nullptr;
    nlohmann::json catalog;  // GET /v1/catalog
    nlohmann::json plugins;  // GET /v1/plugins
    std::string openapi;     // GET /v1/openapi.json (served as is)
    // Admin policy reload (POST /v1/admin/policy/reload); may be empty.
    std::function<Status()> reload_policy;
    std::vector<std::string> admin_groups;
    // GET /v1/agents: outbound-only agents and their status; empty when none
    // are configured (the route answers 404).
    std::function<nlohmann::json()> agents;
  };

  explicit V1Api(Dependencies deps);
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  HttpResponse Route(const HttpRequest& request) const;
  // Whether `request` may be answered on an HTTP I/O thread: a read that
  // waits on no commit, no network and no long lock (see HttpHandler).
  bool AnswersOnIoThread(const HttpRequest& request,
                         const std::vector<std::string_view>& seg) const;
  void CountStatus(unsigned status) const;
  HttpResponse JobResults(const HttpRequest& request, const Principal& caller,
                          const std::string& id, const std::vector<std::string_view>& seg) const;
  Dependencies d_;
  // airlock_http_requests_total by status class (index status / 100),
  // registered on first use; Metrics keeps the counters alive.
  mutable std::array<std::atomic<Metrics::Counter*>, 6> status_counters_{};
};

}  // namespace airlock
