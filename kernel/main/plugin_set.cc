#include "kernel/main/plugin_set.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "kernel/plugin_host/config_schema.h"
#include "kernel/plugin_host/plugin_file.h"
#include "kernel/plugin_host/plugin_probe.h"

namespace airlock {

using nlohmann::json;
using namespace plugin_host;

namespace {

// How long the connector probe may take (it loads one shared object).
constexpr std::chrono::milliseconds kProbeTimeout{20000};

std::string Slot(const char* role, const PluginRef& ref) {
  return std::string(role) + " plugin '" + ref.name + "'";
}

json ManifestJson(const PluginManifest& m, const std::string& role, const std::string& name) {
  return {{"name", name},
          {"role", role},
          {"plugin", m.name},
          {"version", m.version},
          {"kind", PluginKindName(m.kind)},
          {"abi", std::to_string(m.abi_major) + "." + std::to_string(m.abi_minor)},
          {"path", m.path},
          {"sha256", m.sha256},
          {"description", m.description},
          {"loaded_in", "kernel"}};
}

// `config` checked against the schema the plugin's manifest declares (see
// config_schema.h), before the plugin sees it. Top-level keys starting with
// '$' are the kernel's own annotations (the isolator's state directory and
// instance), not the operator's. A schema this kernel cannot read is noted,
// and the plugin's own check decides alone.
Status CheckDeclaredSchema(const json& schema, const json& config, const std::string& slot,
                           PluginSet& set) {
  if (schema.is_null()) return Status::Ok();
  if (Status supported = SchemaSupport(schema); !supported.ok()) {
    set.notes.push_back(slot + ": configuration not checked against its schema (" +
                        supported.message() + ")");
    return Status::Ok();
  }
  json operators = config.is_null() ? json::object() : config;
  if (operators.is_object()) {
    for (auto it = operators.begin(); it != operators.end();) {
      it = it.key().rfind('$', 0) == 0 ? operators.erase(it) : std::next(it);
    }
  }
  return CheckAgainstSchema(schema, operators, slot + " config");
}

// Loads one kernel-side plugin and, in kServe mode, makes its instance
// (stored in *made); in kCheck mode checks its configuration only.
template <typename Plugin>
Status LoadOne(PluginLoader& loader, const PluginRef& ref, const char* role,
               airlock_type_plugin_kind kind, PluginSetMode mode, PluginSet& set,
               std::unique_ptr<Plugin>* made) {
  auto library = loader.Load(ref.path, ref.sha256, kind);
  if (!library.ok()) return library.status().WithContext(Slot(role, ref));
  set.manifests.push_back(ManifestJson((*library)->manifest(), role, ref.name));
  AIRLOCK_RETURN_IF_ERROR(
      CheckDeclaredSchema((*library)->manifest().config_schema, ref.config, Slot(role, ref), set));
  if (mode == PluginSetMode::kCheck) {
    const Status checked = CheckPluginConfig(**library, ref.config);
    if (checked.ok()) return Status::Ok();
    if (checked.code() != StatusCode::kNotImplemented) {
      return checked.WithContext(Slot(role, ref) + " configuration");
    }
    if (kind == AIRLOCK_KIND_TUNNEL) {
      // A tunnel's create() binds its listener: not done for a check.
      set.notes.push_back(Slot(role, ref) + ": configuration not checked (" + checked.message() +
                          "; creating it would start its listener)");
      return Status::Ok();
    }
  }
  auto instance = Plugin::Create(std::move(library).value(), ref.config);
  if (!instance.ok()) {
    return instance.status().WithContext(Slot(role, ref) + " (" + ref.path + ") configuration");
  }
  if (mode == PluginSetMode::kServe) *made = std::move(instance).value();
  return Status::Ok();
}

Status CheckConnector(const std::string& name, const PluginRef& ref,
                      const std::string& enclave_executable, PluginSet& set) {
  if (!ref.agent.empty()) {
    // Loaded by enclaves on the agent's host, where the file must be.
    set.manifests.push_back({{"name", name},
                             {"role", "connector"},
                             {"kind", "connector"},
                             {"path", ref.path},
                             {"loaded_in", "enclave on agent " + ref.agent}});
    return Status::Ok();
  }
  const std::string slot = "connector '" + name + "'";
  auto checked = CheckPluginFile(ref.path);
  if (!checked.ok()) return checked.status().WithContext(slot);
  if (ref.sha256) {
    auto pin = NormalizeSha256Pin(*ref.sha256);
    if (!pin.ok()) return pin.status().WithContext(slot);
    if (*pin != checked->sha256) {
      return Status::FailedPrecondition(slot + ": " + ref.path +
                                        " does not match its SHA-256 pin (expected " + *pin +
                                        ", file has " + checked->sha256 + ")");
    }
  }
  json entry = {{"name", name},
                {"role", "connector"},
                {"kind", "connector"},
                {"path", checked->canonical_path},
                {"sha256", checked->sha256},
                {"loaded_in", "enclave"}};
  auto probed = ProbeConnectorPlugin(enclave_executable, checked->canonical_path, kProbeTimeout);
  if (probed.ok()) {
    entry["plugin"] = probed->summary;
    AIRLOCK_RETURN_IF_ERROR(CheckDeclaredSchema(probed->config_schema, ref.config, slot, set));
  } else if (probed.status().code() == StatusCode::kNotFound) {
    set.notes.push_back(slot + ": entry point, ABI and kind not checked (" +
                        probed.status().message() + ")");
  } else {
    return probed.status().WithContext(slot);
  }
  set.manifests.push_back(std::move(entry));
  return Status::Ok();
}

}  // namespace

Result<PluginSet> LoadPluginSet(const KernelConfig& config, PluginLoader& loader,
                                PluginSetMode mode, const std::string& enclave_executable) {
  PluginSet set;
  for (const auto& ref : config.identity) {
    std::unique_ptr<IdentityPlugin> made;
    AIRLOCK_RETURN_IF_ERROR(
        LoadOne(loader, ref, "identity", AIRLOCK_KIND_IDENTITY, mode, set, &made));
    if (made) set.identity.push_back(std::move(made));
  }
  AIRLOCK_RETURN_IF_ERROR(
      LoadOne(loader, config.policy, "policy", AIRLOCK_KIND_POLICY, mode, set, &set.policy));
  for (const auto& [name, tenant] : config.tenants) {
    if (!tenant.policy) continue;
    std::unique_ptr<PolicyPlugin> made;
    AIRLOCK_RETURN_IF_ERROR(
        LoadOne(loader, *tenant.policy, "policy", AIRLOCK_KIND_POLICY, mode, set, &made));
    if (made) set.tenant_policies.emplace(name, std::move(made));
  }
  AIRLOCK_RETURN_IF_ERROR(LoadOne(loader, config.isolator, "isolator", AIRLOCK_KIND_ISOLATOR, mode,
                                  set, &set.isolator));
  if (set.isolator) {
    json& entry = set.manifests.back();
    if (auto isolation = set.isolator->DescribeIsolation(); isolation.ok()) {
      entry["isolation"] = *isolation;
      if (isolation->value("development_only", false)) {
        spdlog::warn("isolator '{}' provides NO isolation and is for development only",
                     config.isolator.name);
      }
    }
  }
  AIRLOCK_RETURN_IF_ERROR(
      LoadOne(loader, config.tunnel, "tunnel", AIRLOCK_KIND_TUNNEL, mode, set, &set.tunnel));
  for (const auto& [name, entry] : config.notifications.notifiers) {
    std::unique_ptr<NotifierPlugin> made;
    AIRLOCK_RETURN_IF_ERROR(
        LoadOne(loader, entry.plugin, "notifier", AIRLOCK_KIND_NOTIFIER, mode, set, &made));
    if (made) set.notifiers.emplace(name, std::move(made));
  }
  for (const auto& [name, ref] : config.connectors) {
    AIRLOCK_RETURN_IF_ERROR(CheckConnector(name, ref, enclave_executable, set));
  }
  return set;
}

}  // namespace airlock
