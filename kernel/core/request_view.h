// What GET /v1/requests/{id} answers, rendered straight from the stored text
// of a request (StateStore::LoadText): the stored documents are spliced in
// as they are, so a GET parses and re-serialises only what live data changes
// (the enclave document when it gains progress or an agent's status).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/state/state_store.h"

namespace airlock {

// The compact JSON text of RequestToJson(record, live_progress) with
// enclave.agent_status set to `agent_status` when given, byte for byte what
// dump(-1, ' ', false, replace) of that view gives, for the record `stored`
// holds. Internal when the enclave document has to be changed and is not a
// JSON object.
Result<std::string> RenderRequestView(const StoredRequestText& stored,
                                      const nlohmann::json& live_progress,
                                      const std::optional<nlohmann::json>& agent_status);

// Whether a stored tunnel document holds the verifier of the requester's
// credential (kept for a survivor's tunnel, never shown), and the document
// without it.
bool HasTunnelVerifier(const std::string& stored_tunnel);
std::string TunnelWithoutVerifier(const std::string& stored_tunnel);

// The agent named by the stored enclave document ({"agent": "<name>"}), if any.
std::optional<std::string> StoredEnclaveAgent(const StoredRequestText& stored);

}  // namespace airlock
