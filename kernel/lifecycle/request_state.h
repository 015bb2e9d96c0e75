// The request lifecycle: one enum and one transition table (DESIGN.md,
// "Request lifecycle"). Every state change in the kernel goes through
// CanTransition(); states are persisted and audited by their snake_case name.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace airlock {

enum class RequestState {
  kSubmitted,
  kEvaluating,
  kDenied,
  kPendingApproval,
  kApproved,
  kProvisioning,
  kIngesting,
  kReady,
  kClosed,
  kFailed,
  kExpired,
  kCancelled,
};

// "pending_approval", ... Stable: stored in the state store and the audit log.
std::string_view RequestStateName(RequestState state);
std::optional<RequestState> ParseRequestState(std::string_view name);

// True for states no transition leaves (denied, closed, failed, expired, cancelled).
bool IsTerminal(RequestState state);

// True when `from -> to` is in the transition table.
bool CanTransition(RequestState from, RequestState to);

// All states, in declaration order (for metrics and documentation).
const std::vector<RequestState>& AllRequestStates();

// A request id as callers may name one: 1..64 letters, digits, '_' or '-'
// (what "req_" + random hex always is; anything else names no request).
bool ValidRequestId(std::string_view id);

}  // namespace airlock
