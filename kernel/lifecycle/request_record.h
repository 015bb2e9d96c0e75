// The persisted form of one access request. The state store keeps exactly
// this; nothing in it is secret (tunnel credentials are never stored).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/lifecycle/request_state.h"

namespace airlock {

struct RequestRecord {
  std::string id;
  RequestState state = RequestState::kSubmitted;
  // Incremented by every persisted change; the store refuses a save whose
  // version is not exactly one more than the stored one (optimistic locking,
  // so several kernel replicas cannot both move the same request).
  int64_t version = 0;
  nlohmann::json requester = nlohmann::json::object();  // principal document
  nlohmann::json request = nlohmann::json::object();    // datasets, window, purpose, mode, queries
  nlohmann::json decision = nlohmann::json::object();   // policy decision document
  nlohmann::json approvals = nlohmann::json::array();   // [{subject, at, comment}]
  nlohmann::json enclave = nlohmann::json::object();    // isolator, isolation, progress
  nlohmann::json tunnel = nlohmann::json::object();     // transport, url (never the credential)
  std::string reason;                                   // why the last transition happened
  int64_t created_at_us = 0;
  int64_t updated_at_us = 0;
  // Deadline of the current phase: approval wait while pending, access window
  // once ready; 0 when none. The expiry scheduler acts on it.
  int64_t deadline_us = 0;

  std::string requester_subject() const { return requester.value("subject", std::string()); }
};

}  // namespace airlock
