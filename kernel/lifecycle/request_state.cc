#include "kernel/lifecycle/request_state.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace airlock {
namespace {

using S = RequestState;

struct Edge {
  S from;
  S to;
};

// The only place transitions are defined. Revocation (-> closed) is allowed
// from every non-terminal state; provisioning failures go to failed.
constexpr std::array kTransitions = {
    Edge{S::kSubmitted, S::kEvaluating},
    Edge{S::kSubmitted, S::kClosed},
    Edge{S::kEvaluating, S::kDenied},
    Edge{S::kEvaluating, S::kPendingApproval},
    Edge{S::kEvaluating, S::kApproved},
    Edge{S::kEvaluating, S::kFailed},
    Edge{S::kEvaluating, S::kClosed},
    Edge{S::kPendingApproval, S::kApproved},
    Edge{S::kPendingApproval, S::kDenied},
    Edge{S::kPendingApproval, S::kExpired},
    Edge{S::kPendingApproval, S::kCancelled},
    Edge{S::kPendingApproval, S::kClosed},
    Edge{S::kApproved, S::kProvisioning},
    Edge{S::kApproved, S::kFailed},
    Edge{S::kApproved, S::kClosed},
    Edge{S::kProvisioning, S::kIngesting},
    // Back to approved: the replica that owned the enclave was lost, and a
    // survivor provisions it again.
    Edge{S::kProvisioning, S::kApproved},
    Edge{S::kIngesting, S::kApproved},
    Edge{S::kReady, S::kApproved},
    Edge{S::kProvisioning, S::kFailed},
    Edge{S::kProvisioning, S::kClosed},
    Edge{S::kIngesting, S::kReady},
    Edge{S::kIngesting, S::kFailed},
    Edge{S::kIngesting, S::kClosed},
    Edge{S::kReady, S::kClosed},
    Edge{S::kReady, S::kFailed},
};

constexpr std::array<std::pair<S, std::string_view>, 12> kNames = {{
    {S::kSubmitted, "submitted"},
    {S::kEvaluating, "evaluating"},
    {S::kDenied, "denied"},
    {S::kPendingApproval, "pending_approval"},
    {S::kApproved, "approved"},
    {S::kProvisioning, "provisioning"},
    {S::kIngesting, "ingesting"},
    {S::kReady, "ready"},
    {S::kClosed, "closed"},
    {S::kFailed, "failed"},
    {S::kExpired, "expired"},
    {S::kCancelled, "cancelled"},
}};

}  // namespace

std::string_view RequestStateName(RequestState state) {
  for (const auto& [s, name] : kNames) {
    if (s == state) return name;
  }
  return "unknown";
}

std::optional<RequestState> ParseRequestState(std::string_view name) {
  for (const auto& [s, n] : kNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

bool IsTerminal(RequestState state) {
  switch (state) {
    case S::kDenied:
    case S::kClosed:
    case S::kFailed:
    case S::kExpired:
    case S::kCancelled:
      return true;
    default:
      return false;
  }
}

bool CanTransition(RequestState from, RequestState to) {
  for (const auto& edge : kTransitions) {
    if (edge.from == from && edge.to == to) return true;
  }
  return false;
}

const std::vector<RequestState>& AllRequestStates() {
  static const std::vector<RequestState> kAll = [] {
    std::vector<RequestState> all;
    for (const auto& [s, name] : kNames) all.push_back(s);
    return all;
  }();
  return kAll;
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

}  // namespace airlock
