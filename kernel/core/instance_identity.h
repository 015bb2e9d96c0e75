// The identity of one kernel (or agent) instance, and the host annotations
// that hand it, with a private directory, to the isolator plugin.
//
// An isolator uses the identity to tell the enclaves this instance started
// from those of another kernel on the same host (the `process` isolator names
// its cgroups and orphan records by it), so it must be stable across restarts
// of one instance and differ between instances. It is derived from the state
// directory: hex(SHA-256("airlock-instance\n" + canonical path + "\n" + nonce)),
// first 32 digits, where the nonce is 16 random bytes created once in
// <state_dir>/instance.nonce. The path alone would collide for two containers
// that use the same path on one host; the nonce alone would be shared by a
// kernel started on a copy of the state directory. Together neither happens,
// and a restart (same directory, same nonce) keeps the identity.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock {

// Reads <state_dir>/instance.nonce, creating it (0600, written and synced
// before it appears) on the first start, and returns the identity.
// `state_dir` must exist. FailedPrecondition when the nonce file is malformed
// (naming it), Unavailable when it cannot be read or written.
Result<std::string> LoadInstanceId(const std::string& state_dir);

// Adds "$state_dir" (<state_dir>/isolator) and "$instance_id" to an
// isolator's plugin configuration (keys a plugin reads as host annotations).
void AnnotateIsolatorConfig(nlohmann::json& config, const std::string& state_dir,
                            const std::string& instance_id);

}  // namespace airlock
