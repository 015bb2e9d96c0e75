// The http-decision policy backend: asks an external decision service for
// every access request, in the Open Policy Agent REST data API shape:
//
//   POST <url>/v1/data/<decision_path>   {"input": <policy input>}
//   200 {"result": <decision document, as in the plugin ABI>}
//
// Fail closed: an unreachable service, a timeout, a non-2xx answer, a
// missing or null `result` (OPA's "undefined"), or a result that is not a
// valid decision document make Evaluate return Unavailable; the kernel then
// denies the request and records the reason. This backend never turns a
// failure into an allow.
//
// Thread-safety: Evaluate may be called concurrently (see DecisionClient).
#pragma once

#include <memory>
#include <string>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"
#include "decision_client.h"

namespace airlock::policy::http_decision {

class HttpDecisionPolicy : public sdk::PolicyBackend {
 public:
  // Validates the configuration, loads the CA bundle and resolves the bearer
  // token reference through the host (a refusal fails creation: the service
  // is never called unauthenticated when a token was configured).
  static Result<std::unique_ptr<HttpDecisionPolicy>> Create(const Json& config,
                                                            const sdk::Host& host);

  Result<Decision> Evaluate(const PolicyInput& input) override;

  // Turns a service answer into a decision or the reason there is none.
  // Public for tests of the answer checks.
  static Result<Decision> DecisionFromAnswer(const HttpAnswer& answer,
                                             const std::string& decision_path);

  int64_t connections_opened() const { return client_->connections_opened(); }

 private:
  HttpDecisionPolicy(DecisionServiceConfig config, std::unique_ptr<DecisionClient> client,
                     sdk::SecretBytes token, sdk::Host host);

  const DecisionServiceConfig config_;
  std::unique_ptr<DecisionClient> client_;
  sdk::SecretBytes token_;  // empty when no bearer token is configured
  const sdk::Host host_;
};

}  // namespace airlock::policy::http_decision
