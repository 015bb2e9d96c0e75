// Test policy backend: members of one group are allowed, others need approval.
#include <mutex>
#include <stdexcept>

#include "airlock/cpp/plugin.hpp"

namespace {

using airlock::Decision;
using airlock::Effect;
using airlock::Result;
using airlock::Status;

class TestPolicy : public airlock::sdk::PolicyBackend {
 public:
  static Result<std::unique_ptr<TestPolicy>> Create(const airlock::Json& config,
                                                    const airlock::sdk::Host& /*host*/) {
    auto made = std::make_unique<TestPolicy>();
    AIRLOCK_RETURN_IF_ERROR(made->Reload(config));
    return made;
  }

  Result<Decision> Evaluate(const airlock::PolicyInput& input) override {
    if (input.request.purpose == "throw") throw std::logic_error("policy exploded");
    Decision decision;
    if (input.request.purpose == "garbage") {
      decision.effect = Effect::kNeedsApproval;  // without approver groups: invalid
      return decision;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (input.principal.InGroup(allow_group_)) {
      decision.effect = Effect::kAllow;
      decision.reason = "member of " + allow_group_;
      decision.rule = "group-allow";
      decision.max_window_seconds = 600;
      for (const auto& dataset : input.request.datasets) {
        airlock::DatasetScope scope;
        scope.columns = {"id"};
        scope.masks["email"] = "redact";
        decision.obligations[dataset] = scope;
      }
    } else {
      decision.effect = Effect::kNeedsApproval;
      decision.reason = "not in " + allow_group_;
      decision.rule = "fallback";
      decision.approval.groups = {"approvers"};
      decision.approval.count = 2;
    }
    return decision;
  }

  Status Reload(const airlock::Json& config) override {
    std::string group;
    AIRLOCK_RETURN_IF_ERROR(
        airlock::json_read::String(config, "allow_group", &group, true, "config"));
    std::lock_guard<std::mutex> lock(mutex_);
    allow_group_ = group;
    return Status::Ok();
  }

 private:
  std::mutex mutex_;
  std::string allow_group_;
};

}  // namespace

AIRLOCK_POLICY_PLUGIN(TestPolicy, "test-policy", "0.3.0", "Group allow-list (tests only)", nullptr)
