// The plugins a configuration names, loaded and checked by one code path for
// `airlockd serve` and `airlockd check-config`, so the two cannot disagree
// about what is acceptable:
//  - every kernel-side plugin (identity, policy, isolator, tunnel, notifier) is loaded
//    through the loader (file trust checks, SHA-256 pin, entry point, ABI,
//    kind matches its slot, mandatory functions);
//  - its own configuration is checked: `serve` makes the instance; `check`
//    calls the plugin's check_config (ABI 1.1), or, for an identity, policy
//    or isolator plugin without one, makes and destroys an instance (their
//    create() starts no listener and no enclave); a tunnel without one is
//    not instantiated (its create() binds a port) and a note says so;
//  - every connector file is checked (trust, pin) and, through the enclave
//    executable's --check-plugin probe in a separate process, its entry
//    point, ABI and kind; the kernel never maps connector code itself.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/core/config.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"

namespace airlock {

struct PluginSet {
  // Set only when loaded with PluginSetMode::kServe.
  std::vector<std::unique_ptr<plugin_host::IdentityPlugin>> identity;
  std::unique_ptr<plugin_host::PolicyPlugin> policy;
  // Tenants' own policies (tenants.<t>.policy), by tenant.
  std::map<std::string, std::unique_ptr<plugin_host::PolicyPlugin>> tenant_policies;
  std::unique_ptr<plugin_host::IsolatorPlugin> isolator;
  std::unique_ptr<plugin_host::TunnelPlugin> tunnel;
  // By instance name (NotificationsConfig::notifiers).
  std::map<std::string, std::unique_ptr<plugin_host::NotifierPlugin>> notifiers;
  // The /v1/plugins entries ({"plugins":[...]} without the wrapper).
  nlohmann::json manifests = nlohmann::json::array();
  // What could not be checked, and why (for check-config's report and the log).
  std::vector<std::string> notes;
};

enum class PluginSetMode {
  kServe,  // make the instances the kernel runs
  kCheck,  // check every configuration; start nothing
};

// Loads and checks every plugin `config` names, in configuration order
// (identity providers, policy, isolator, tunnel, notifiers, connectors), and stops at
// the first refusal with a message naming the slot, the instance name and
// the file. `enclave_executable` runs the connector probe; when it is not
// there, connector manifests are not checked and a note says so.
Result<PluginSet> LoadPluginSet(const KernelConfig& config, plugin_host::PluginLoader& loader,
                                PluginSetMode mode, const std::string& enclave_executable);

}  // namespace airlock
