#include "pod_status.h"

#include <set>

namespace airlock::isolators::kubernetes {
namespace {

std::string Reason(const std::string& reason, const std::string& message) {
  std::string m = message.size() > 512 ? message.substr(0, 512) + "..." : message;
  return m.empty() ? reason : reason + ": " + m;
}

const Json& Member(const Json& j, const char* key) {
  static const Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string Text(const Json& j, const char* key) {
  const Json& v = Member(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

}  // namespace

std::optional<std::string> StartFailure(const Json& pod) {
  const Json& status = Member(pod, "status");
  const std::string phase = Text(status, "phase");
  // Waiting reasons that end a start: Kubernetes keeps retrying some of
  // them, but none resolves without someone changing the image, the
  // Secrets or the cluster.
  static const std::set<std::string> kFatalWaiting = {
      "ImagePullBackOff",     "InvalidImageName", "CreateContainerConfigError",
      "CreateContainerError", "CrashLoopBackOff", "ErrImageNeverPull"};
  const Json& containers = Member(status, "containerStatuses");
  if (containers.is_array()) {
    for (const auto& c : containers) {
      const Json& state = Member(c, "state");
      const Json& waiting = Member(state, "waiting");
      if (waiting.is_object() && kFatalWaiting.count(Text(waiting, "reason"))) {
        return Reason(Text(waiting, "reason"), Text(waiting, "message"));
      }
      const Json& terminated = Member(state, "terminated");
      if (terminated.is_object()) {
        std::string reason = Text(terminated, "reason");
        if (reason.empty()) reason = "Terminated";
        const Json& code = Member(terminated, "exitCode");
        std::string message = Text(terminated, "message");
        if (code.is_number_integer()) {
          message = "exit code " + std::to_string(code.get<int64_t>()) +
                    (message.empty() ? "" : "; " + message);
        }
        return Reason(reason, message);
      }
    }
  }
  const Json& conditions = Member(status, "conditions");
  if (conditions.is_array()) {
    for (const auto& c : conditions) {
      if (Text(c, "type") == "PodScheduled" && Text(c, "status") == "False" &&
          Text(c, "reason") == "Unschedulable") {
        return Reason("Unschedulable", Text(c, "message"));
      }
    }
  }
  if (phase == "Failed" || phase == "Succeeded") {
    std::string reason = Text(status, "reason");
    return Reason(reason.empty() ? "Pod" + phase : reason, Text(status, "message"));
  }
  return std::nullopt;
}

std::string PodPhaseSummary(const Json& pod) {
  const Json& status = Member(pod, "status");
  std::string phase = Text(status, "phase");
  if (phase.empty()) phase = "unknown";
  const Json& containers = Member(status, "containerStatuses");
  if (containers.is_array() && !containers.empty()) {
    const Json& waiting = Member(Member(containers[0], "state"), "waiting");
    if (waiting.is_object() && !Text(waiting, "reason").empty()) {
      phase += " (" + Text(waiting, "reason") + ")";
    }
  }
  return phase;
}

}  // namespace airlock::isolators::kubernetes
