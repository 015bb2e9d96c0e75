#include "http_decision.h"

#include <openssl/crypto.h>

namespace airlock::policy::http_decision {
namespace {

constexpr size_t kMaxReasonBytes = 2048;

// Caps free text a remote service controls before it reaches audit records.
std::string Bounded(std::string text) {
  if (text.size() > kMaxReasonBytes) {
    text.resize(kMaxReasonBytes);
    text += "...";
  }
  return text;
}

Status Unavailable(const std::string& why) {
  return Status::Unavailable("decision service gave no usable decision: " + why);
}

}  // namespace

HttpDecisionPolicy::HttpDecisionPolicy(DecisionServiceConfig config,
                                       std::unique_ptr<DecisionClient> client,
                                       sdk::SecretBytes token, sdk::Host host)
    : config_(std::move(config)),
      client_(std::move(client)),
      token_(std::move(token)),
      host_(std::move(host)) {}

Result<std::unique_ptr<HttpDecisionPolicy>> HttpDecisionPolicy::Create(const Json& config,
                                                                       const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(DecisionServiceConfig parsed, ParseConfig(config));
  if (!parsed.ca_file.empty()) parsed.ca_file = host.ResolvePath(parsed.ca_file);
  sdk::SecretBytes token;
  if (!parsed.bearer_token_secret.empty()) {
    auto resolved = host.ResolveSecret(parsed.bearer_token_secret);
    if (!resolved.ok()) {
      // The reference names where the token lives, never the token itself.
      return resolved.status().WithContext("http-decision configuration.bearer_token_secret");
    }
    token = std::move(resolved).value();
    if (token.view().empty()) {
      return Status::InvalidArgument(
          "http-decision configuration.bearer_token_secret resolves to an empty value");
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(auto client, DecisionClient::Create(parsed));
  host.Info("decision service: " + std::string(parsed.tls ? "https://" : "http://") + parsed.host +
            ":" + parsed.port + parsed.target);
  return std::unique_ptr<HttpDecisionPolicy>(
      new HttpDecisionPolicy(std::move(parsed), std::move(client), std::move(token), host));
}

Result<Decision> HttpDecisionPolicy::DecisionFromAnswer(const HttpAnswer& answer,
                                                        const std::string& decision_path) {
  if (answer.status < 200 || answer.status > 299) {
    return Unavailable("it answered HTTP " + std::to_string(answer.status));
  }
  const Json body = Json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Unavailable("its answer is not JSON");
  if (!body.is_object()) return Unavailable("its answer is not a JSON object");
  auto result = body.find("result");
  if (result == body.end() || result->is_null()) {
    return Unavailable("data." + decision_path + " is undefined (no result)");
  }
  if (!result->is_object() || !result->contains("effect")) {
    return Unavailable("data." + decision_path + " is not a decision document (no effect)");
  }
  auto decision = Decision::FromJson(*result);
  if (!decision.ok()) {
    return Unavailable("data." + decision_path +
                       " is not a valid decision: " + decision.status().message());
  }
  Decision d = std::move(decision).value();
  // Every decision names what decided it, even when the service does not.
  d.rule = d.rule.empty() ? "http-decision:" + decision_path : Bounded(std::move(d.rule));
  d.reason = d.reason.empty() ? std::string("decided by data.") + decision_path
                              : Bounded(std::move(d.reason));
  return d;
}

Result<Decision> HttpDecisionPolicy::Evaluate(const PolicyInput& input) {
  const std::string body = Json{{"input", input.ToJson()}}.dump();
  std::string authorization;
  if (!token_.view().empty()) {
    authorization.reserve(7 + token_.view().size());
    authorization.append("Bearer ").append(token_.view());
  }
  auto answer = client_->Post(body, authorization);
  if (!authorization.empty()) OPENSSL_cleanse(authorization.data(), authorization.size());
  if (!answer.ok()) {
    host_.Warn("decision service call failed: " + answer.status().message());
    return Unavailable(answer.status().message());
  }
  auto decision = DecisionFromAnswer(*answer, config_.decision_path);
  if (!decision.ok()) host_.Warn(decision.status().message());
  return decision;
}

}  // namespace airlock::policy::http_decision
