#include "kernel/lifecycle/request_state.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace airlock {
namespace {

using S = RequestState;

// The lifecycle as DESIGN.md specifies it, written out independently of the
// implementation's table so a change to either shows up here.
const std::set<std::pair<S, S>>& SpecifiedTransitions() {
  static const std::set<std::pair<S, S>> kEdges = {
      {S::kSubmitted, S::kEvaluating},
      {S::kSubmitted, S::kClosed},
      {S::kEvaluating, S::kDenied},
      {S::kEvaluating, S::kPendingApproval},
      {S::kEvaluating, S::kApproved},
      {S::kEvaluating, S::kFailed},
      {S::kEvaluating, S::kClosed},
      {S::kPendingApproval, S::kApproved},
      {S::kPendingApproval, S::kDenied},
      {S::kPendingApproval, S::kExpired},
      {S::kPendingApproval, S::kCancelled},
      {S::kPendingApproval, S::kClosed},
      {S::kApproved, S::kProvisioning},
      {S::kApproved, S::kFailed},
      {S::kApproved, S::kClosed},
      {S::kProvisioning, S::kIngesting},
      {S::kProvisioning, S::kFailed},
      {S::kProvisioning, S::kClosed},
      {S::kIngesting, S::kReady},
      {S::kIngesting, S::kFailed},
      {S::kIngesting, S::kClosed},
      {S::kReady, S::kClosed},
      {S::kReady, S::kFailed},
      // A survivor provisions again the enclave of a replica it took over.
      {S::kProvisioning, S::kApproved},
      {S::kIngesting, S::kApproved},
      {S::kReady, S::kApproved},
  };
  return kEdges;
}

const std::set<S> kTerminal = {S::kDenied, S::kClosed, S::kFailed, S::kExpired, S::kCancelled};

std::string Name(S state) {
  return std::string(RequestStateName(state));
}

TEST(RequestStateTest, EveryListedTransitionIsAllowed) {
  for (const auto& [from, to] : SpecifiedTransitions()) {
    EXPECT_TRUE(CanTransition(from, to)) << Name(from) << " -> " << Name(to);
  }
}

TEST(RequestStateTest, SampleOfForbiddenTransitionsIsRefused) {
  const std::pair<S, S> forbidden[] = {
      {S::kSubmitted, S::kApproved},     // skipping policy evaluation
      {S::kSubmitted, S::kReady},        // skipping everything
      {S::kEvaluating, S::kReady},       // ready before provisioning
      {S::kPendingApproval, S::kReady},  // approval does not provision
      {S::kApproved, S::kIngesting},     // ingest before provisioning
      {S::kProvisioning, S::kReady},     // ready before data is sealed in
      {S::kReady, S::kProvisioning},     // no going back
      {S::kApproved, S::kPendingApproval},
      {S::kSubmitted, S::kSubmitted},  // no self loops
      {S::kReady, S::kReady},
      {S::kReady, S::kExpired},    // a ready window ends by closing
      {S::kDenied, S::kApproved},  // terminal
      {S::kClosed, S::kSubmitted},
      {S::kExpired, S::kPendingApproval},
  };
  for (const auto& [from, to] : forbidden) {
    EXPECT_FALSE(CanTransition(from, to)) << Name(from) << " -> " << Name(to);
  }
}

TEST(RequestStateTest, TableMatchesTheSpecificationExactly) {
  for (S from : AllRequestStates()) {
    for (S to : AllRequestStates()) {
      EXPECT_EQ(CanTransition(from, to), SpecifiedTransitions().count({from, to}) == 1)
          << Name(from) << " -> " << Name(to);
    }
  }
}

TEST(RequestStateTest, TerminalStatesHaveNoExits) {
  for (S state : AllRequestStates()) {
    EXPECT_EQ(IsTerminal(state), kTerminal.count(state) == 1) << Name(state);
    if (!IsTerminal(state)) continue;
    for (S to : AllRequestStates()) {
      EXPECT_FALSE(CanTransition(state, to)) << Name(state) << " -> " << Name(to);
    }
  }
}

TEST(RequestStateTest, EveryNonTerminalStateCanBeClosedOrFailed) {
  for (S state : AllRequestStates()) {
    if (IsTerminal(state)) continue;
    EXPECT_TRUE(CanTransition(state, S::kClosed) || CanTransition(state, S::kFailed))
        << Name(state);
  }
}

TEST(RequestStateTest, NamesRoundTripAndAreStable) {
  ASSERT_EQ(AllRequestStates().size(), 12u);
  std::set<std::string> seen;
  for (S state : AllRequestStates()) {
    const std::string name = Name(state);
    EXPECT_NE(name, "unknown");
    EXPECT_TRUE(seen.insert(name).second) << "duplicate name " << name;
    auto parsed = ParseRequestState(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, state);
  }
  // Stored in the state store and the audit log: these spellings must not change.
  EXPECT_EQ(Name(S::kPendingApproval), "pending_approval");
  EXPECT_EQ(Name(S::kSubmitted), "submitted");
  EXPECT_EQ(Name(S::kCancelled), "cancelled");
  EXPECT_FALSE(ParseRequestState("").has_value());
  EXPECT_FALSE(ParseRequestState("Submitted").has_value());
  EXPECT_FALSE(ParseRequestState("pending-approval").has_value());
  EXPECT_FALSE(ParseRequestState("unknown").has_value());
}

}  // namespace
}  // namespace airlock
