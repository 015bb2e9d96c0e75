#include "kernel/agent_main/site_specs.h"

#include "kernel/core/egress_dialer.h"
#include "kernel/enclave/channel.h"

namespace airlock::agent {

using nlohmann::json;

namespace {

json Sorted(const std::set<std::string>& values) {
  return json(std::vector<std::string>(values.begin(), values.end()));
}

}  // namespace

SiteSpecs::SiteSpecs(SiteSources site, std::string config_dir, bool egress_forwarded)
    : site_(std::move(site)),
      config_dir_(std::move(config_dir)),
      egress_forwarded_(egress_forwarded) {}

const DatasetInfo* SiteSpecs::Find(const std::string& name) const {
  for (const DatasetInfo& d : site_.datasets) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

Result<ConnectorAccess> SiteSpecs::AccessFor(const std::vector<std::string>& datasets) const {
  ConnectorAccess access;
  for (const std::string& name : datasets) {
    const DatasetInfo* d = Find(name);
    if (d == nullptr) {
      return Status::InvalidArgument("this site does not own dataset '" + name + "'");
    }
    CollectConnectorAccess(site_.connectors.at(d->connector), config_dir_, &access);
  }
  return access;
}

json SiteSpecs::DescribeIsolatorSpec(const std::string& id) const {
  std::vector<std::string> names;
  for (const DatasetInfo& d : site_.datasets) names.push_back(d.name);
  auto access = AccessFor(names);
  const ConnectorAccess& a = *access;  // every name is this site's
  const std::vector<std::string> endpoints(a.endpoints.begin(), a.endpoints.end());
  return {{"request_id", id},
          {"limits", json::object()},
          {"egress", EgressRoutesJson(PlanEgressRoutes(endpoints))},
          {"read_paths", Sorted(a.read_paths)},
          {"secret_env", Sorted(a.secret_env)}};
}

json SiteSpecs::DescribeEnclaveSpec(const std::string& id) const {
  json datasets = json::array();
  std::set<std::string> endpoints;
  for (const DatasetInfo& d : site_.datasets) {
    const PluginRef& connector = site_.connectors.at(d.connector);
    endpoints.insert(connector.egress.begin(), connector.egress.end());
    datasets.push_back({{"name", d.name},
                        {"connector", ConnectorJson(connector)},
                        {"pull", {{"dataset", d.name}, {"object", d.object}}}});
  }
  const std::vector<std::string> list(endpoints.begin(), endpoints.end());
  return {{"request_id", id},
          {"mode", "describe"},
          {"datasets", datasets},
          {"egress", egress_forwarded_ ? EgressRoutesJson(PlanEgressRoutes(list)) : json::array()},
          {"limits", json::object()}};
}

Result<std::set<std::string>> SiteSpecs::CompleteIsolatorSpec(json& spec) const {
  auto owned = spec.find("site_datasets");
  if (owned == spec.end()) return std::set<std::string>{};
  if (!owned->is_array()) return Status::InvalidArgument("site_datasets must be a list");
  std::vector<std::string> names;
  for (const json& name : *owned) {
    if (!name.is_string()) return Status::InvalidArgument("site_datasets must be names");
    names.push_back(name.get<std::string>());
  }
  AIRLOCK_ASSIGN_OR_RETURN(ConnectorAccess access, AccessFor(names));
  auto extend = [&](const char* key, const std::set<std::string>& more) {
    std::set<std::string> all(more);
    if (auto it = spec.find(key); it != spec.end() && it->is_array()) {
      for (const json& v : *it) {
        if (v.is_string()) all.insert(v.get<std::string>());
      }
    }
    spec[key] = Sorted(all);
  };
  extend("read_paths", access.read_paths);
  extend("secret_env", access.secret_env);
  std::set<std::string> endpoints = access.endpoints;
  if (auto it = spec.find("egress"); it != spec.end() && it->is_array()) {
    for (const json& route : *it) {
      if (route.is_object() && route.contains("endpoint") && route["endpoint"].is_string()) {
        endpoints.insert(route["endpoint"].get<std::string>());
      }
    }
  }
  const std::vector<std::string> list(endpoints.begin(), endpoints.end());
  spec["egress"] = EgressRoutesJson(PlanEgressRoutes(list));
  return access.endpoints;
}

Result<std::string> SiteSpecs::CompleteEnclaveSpec(std::string_view payload) const {
  AIRLOCK_ASSIGN_OR_RETURN(json spec, enclave::ParseJsonObject(payload, "spec"));
  auto datasets = spec.find("datasets");
  if (datasets == spec.end() || !datasets->is_array()) return std::string(payload);
  std::set<std::string> endpoints;
  bool completed = false;
  for (json& entry : *datasets) {
    if (!entry.is_object()) continue;
    const json connector = entry.value("connector", json::object());
    if (!connector.is_object() || !connector.contains("site")) continue;
    const std::string name = entry.value("name", "");
    const DatasetInfo* d = Find(name);
    if (d == nullptr)
      return Status::InvalidArgument("this site does not own dataset '" + name + "'");
    const PluginRef& owned = site_.connectors.at(d->connector);
    entry["connector"] = ConnectorJson(owned);
    entry["pull"]["object"] = d->object;
    // The kernel knows only what the catalog told it; the declaration is here.
    if (auto key = site_.keys.find(name); key != site_.keys.end()) entry["key"] = key->second;
    endpoints.insert(owned.egress.begin(), owned.egress.end());
    completed = true;
  }
  if (!completed) return std::string(payload);
  if (egress_forwarded_) {
    json& routes = spec["egress"];
    if (!routes.is_array()) routes = json::array();
    for (const json& route : routes) {
      if (route.is_object() && route.contains("endpoint") && route["endpoint"].is_string()) {
        endpoints.insert(route["endpoint"].get<std::string>());
      }
    }
    const std::vector<std::string> list(endpoints.begin(), endpoints.end());
    routes = EgressRoutesJson(PlanEgressRoutes(list));
  }
  return spec.dump();
}

json SiteSpecs::CatalogDocument(const Result<json>& described, int64_t now_us) const {
  json datasets = json::array();
  for (const DatasetInfo& d : site_.datasets) {
    json entry = {{"name", d.name}, {"synced_at_us", now_us}};
    // The operator's words first, then what the connector said.
    json info = described.ok() ? described->value("datasets", json::object()).value(d.name, json())
                               : json();
    // A connector's error may quote what it read: only that it failed
    // crosses; the agent's log keeps the words.
    bool failed = !described.ok();
    if (!failed) {
      const json errors = described->value("errors", json::object());
      failed = errors.contains(d.name);
    }
    std::string description = d.description;
    if (description.empty() && info.is_object()) description = info.value("description", "");
    if (!description.empty()) entry["description"] = description;
    std::vector<std::string> tags = d.tags;
    if (tags.empty() && info.is_object()) tags = info.value("tags", std::vector<std::string>{});
    if (!tags.empty()) entry["tags"] = tags;
    json columns = json::array();
    if (!d.columns.empty()) {
      for (const ColumnInfo& c : d.columns) columns.push_back({{"name", c.name}, {"type", c.type}});
    } else if (info.is_object()) {
      for (const json& c : info.value("columns", json::array())) {
        if (!c.is_object()) continue;
        columns.push_back({{"name", c.value("name", "")}, {"type", c.value("type", "")}});
      }
    }
    if (!columns.empty()) entry["columns"] = std::move(columns);
    // Column names, as the kernel's own catalog shows a declared key.
    if (auto key = site_.keys.find(d.name); key != site_.keys.end()) entry["key"] = key->second;
    // A count, never a value: the connector's own (where it can tell).
    if (info.is_object()) {
      if (auto rows = info.find("rows"); rows != info.end() && rows->is_number_integer()) {
        entry["rows"] = *rows;
      }
    }
    if (failed) entry["error"] = "the site could not describe it (its agent's log says why)";
    datasets.push_back(std::move(entry));
  }
  return {{"type", "catalog"}, {"datasets", std::move(datasets)}};
}

}  // namespace airlock::agent
