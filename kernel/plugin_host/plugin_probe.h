// Checks a plugin file in a separate process: `<enclave executable>
// --check-plugin PATH` loads it the way an enclave does and reports its
// manifest. The kernel uses it for connectors, whose code it never maps
// into its own process (their static initialisers and entry point run in
// the probe, with an empty environment and no inherited descriptors).
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::plugin_host {

struct ProbedPlugin {
  std::string summary;           // "<name> <version> (ABI x.y)"
  nlohmann::json config_schema;  // the manifest's, null when it declares none
};

// Runs the probe for the plugin at `path` and waits at most `timeout`.
// Returns what the probe found on success.
// FailedPrecondition with the probe's reason when it refused the plugin
// (wrong kind, no entry point, bad ABI, ...); NotFound when `executable` is
// not an executable file; Internal when the probe crashed or timed out.
Result<ProbedPlugin> ProbeConnectorPlugin(const std::string& executable, const std::string& path,
                                          std::chrono::milliseconds timeout);

}  // namespace airlock::plugin_host
