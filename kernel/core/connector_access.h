// What a connector instance needs from the host its enclave runs on, read
// from its configuration: the files it reads (the plugin, its read_paths,
// paths its configuration names), the environment variables its "env:NAME"
// secret references name, and the endpoints it dials. An isolator makes
// only these visible to the enclave; the kernel and an agent (for its
// site's own connectors) compute them the same way.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/core/config.h"

namespace airlock {

// Collects the file system paths a connector configuration names (keys
// "root", "*_file", "*_dir", "*_path", and "file:" secret references), made
// absolute against `config_dir`.
void CollectConfigPaths(const nlohmann::json& node, const std::string& key,
                        const std::string& config_dir, int depth, std::vector<std::string>* out);
// Collects NAME from every string "env:NAME" in a connector configuration.
void CollectEnvReferences(const nlohmann::json& node, int depth, std::set<std::string>* out);

struct ConnectorAccess {
  std::set<std::string> read_paths;
  std::set<std::string> secret_env;
  std::set<std::string> endpoints;
};
// Adds what `connector` needs to `out`.
void CollectConnectorAccess(const PluginRef& connector, const std::string& config_dir,
                            ConnectorAccess* out);

// The connector as an enclave spec names it: {"name","path","config","sha256"?}.
nlohmann::json ConnectorJson(const PluginRef& connector);

}  // namespace airlock
