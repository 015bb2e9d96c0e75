#include "kernel/core/site_catalog.h"

#include <spdlog/spdlog.h>

#include "airlock/cpp/batch.hpp"

namespace airlock {

using nlohmann::json;

namespace {

// A short text field of a site's document ("" when absent).
Status ReadText(const json& j, const char* key, std::string* out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  if (!it->is_string() || it->get_ref<const std::string&>().size() > kMaxSiteTextBytes) {
    return Status::InvalidArgument(where + "." + key + " must be a string of at most " +
                                   std::to_string(kMaxSiteTextBytes) + " bytes");
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

// Only these keys may cross: metadata, never values.
const std::set<std::string>& KnownDatasetKeys() {
  static const std::set<std::string> kKeys = {"name", "description", "tags", "columns",
                                              "rows", "error",       "key",  "synced_at_us"};
  return kKeys;
}

Result<SiteDataset> ParseSiteDataset(const std::string& agent, const json& j, size_t index,
                                     int64_t now_us) {
  const std::string where = "catalog.datasets[" + std::to_string(index) + "]";
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  for (const auto& [key, value] : j.items()) {
    if (!KnownDatasetKeys().count(key)) {
      return Status::InvalidArgument(where + ": unknown key '" + key + "'");
    }
  }
  SiteDataset d;
  d.agent = agent;
  d.received_at_us = now_us;
  AIRLOCK_RETURN_IF_ERROR(ReadText(j, "name", &d.info.name, where));
  if (!IsSafeIdentifier(d.info.name)) {
    return Status::InvalidArgument(where +
                                   ".name must be an identifier ([A-Za-z_][A-Za-z0-9_]*, "
                                   "max 63)");
  }
  AIRLOCK_RETURN_IF_ERROR(ReadText(j, "description", &d.info.description, where));
  AIRLOCK_RETURN_IF_ERROR(ReadText(j, "error", &d.error, where));
  d.synced = d.error.empty();
  if (auto tags = j.find("tags"); tags != j.end()) {
    if (!tags->is_array() || tags->size() > 64) {
      return Status::InvalidArgument(where + ".tags must be an array of at most 64 strings");
    }
    for (const json& tag : *tags) {
      if (!tag.is_string() || tag.get_ref<const std::string&>().size() > 256) {
        return Status::InvalidArgument(where + ".tags holds a non-string or one over 256 bytes");
      }
      d.info.tags.push_back(tag.get<std::string>());
    }
  }
  if (auto columns = j.find("columns"); columns != j.end()) {
    if (!columns->is_array() || columns->size() > kMaxSiteColumns) {
      return Status::InvalidArgument(where + ".columns must be an array of at most " +
                                     std::to_string(kMaxSiteColumns) + " columns");
    }
    for (const json& c : *columns) {
      // A column is its name and type, nothing else (no sample, no value).
      if (!c.is_object() || c.size() > 2 || !c.contains("name") ||
          (c.size() == 2 && !c.contains("type"))) {
        return Status::InvalidArgument(where + ".columns: each is {\"name\",\"type\"}");
      }
      ColumnInfo column;
      AIRLOCK_RETURN_IF_ERROR(ReadText(c, "name", &column.name, where + ".columns"));
      AIRLOCK_RETURN_IF_ERROR(ReadText(c, "type", &column.type, where + ".columns"));
      if (column.name.empty() || column.name.size() > 256 || column.type.size() > 64) {
        return Status::InvalidArgument(where +
                                       ".columns: a name of 1 to 256 bytes and a type "
                                       "of at most 64");
      }
      d.info.columns.push_back(std::move(column));
    }
  }
  if (auto key = j.find("key"); key != j.end()) {
    // Column names in key order, bounded as a configuration's own key.
    AIRLOCK_ASSIGN_OR_RETURN(d.key, sdk::KeyColumnsFromJson(*key, where + ".key"));
  }
  if (auto rows = j.find("rows"); rows != j.end()) {
    if (!rows->is_number_integer() || rows->get<int64_t>() < 0) {
      return Status::InvalidArgument(where + ".rows must be a non-negative integer");
    }
    d.info.rows = rows->get<int64_t>();
  }
  if (auto at = j.find("synced_at_us"); at != j.end()) {
    if (!at->is_number_integer()) {
      return Status::InvalidArgument(where + ".synced_at_us must be an integer");
    }
    d.synced_at_us = at->get<int64_t>();
  }
  return d;
}

}  // namespace

json SiteDataset::ToCatalogJson() const {
  json entry = info.ToJson();
  entry.erase("connector");
  entry.erase("object");
  if (!key.empty()) entry["key"] = key;
  json site = {{"agent", agent},
               {"sync", synced ? "ok" : "error"},
               {"synced_at_us", synced_at_us},
               {"received_at_us", received_at_us}};
  if (!synced) site["error"] = error;
  entry["site"] = std::move(site);
  entry["schema"] = {{"source", "site"}, {"described_at_us", synced_at_us}};
  return entry;
}

Result<SiteCatalog::Replaced> SiteCatalog::Replace(const std::string& agent, const json& document,
                                                   int64_t now_us) {
  AIRLOCK_ASSIGN_OR_RETURN(Replaced replaced, Apply(agent, document, now_us));
  if (store_ != nullptr) {
    const Status recorded = store_->RecordSiteCatalog({agent, document["datasets"].dump(), now_us});
    if (!recorded.ok()) {
      spdlog::warn("site {}: its catalog is not recorded in the state store: {}", agent,
                   recorded.message());
    }
  }
  return replaced;
}

Status SiteCatalog::Refresh() {
  if (store_ == nullptr) return Status::Ok();
  AIRLOCK_ASSIGN_OR_RETURN(const std::vector<StoredSiteCatalog> stored, store_->ListSiteCatalogs());
  for (const StoredSiteCatalog& catalog : stored) {
    {
      std::lock_guard lock(mu_);
      auto held = received_.find(catalog.agent);
      if (held != received_.end() && held->second >= catalog.received_at_us) continue;
    }
    json datasets = json::parse(catalog.datasets_json, nullptr, false);
    auto applied =
        Apply(catalog.agent, {{"datasets", std::move(datasets)}}, catalog.received_at_us);
    if (!applied.ok()) {
      spdlog::warn("site {}: its stored catalog is skipped: {}", catalog.agent,
                   applied.status().message());
    }
  }
  return Status::Ok();
}

Result<SiteCatalog::Replaced> SiteCatalog::Apply(const std::string& agent, const json& document,
                                                 int64_t now_us) {
  if (!document.is_object()) return Status::InvalidArgument("a catalog must be an object");
  auto list = document.find("datasets");
  if (list == document.end() || !list->is_array()) {
    return Status::InvalidArgument("catalog.datasets must be an array");
  }
  if (list->size() > kMaxSiteDatasets) {
    return Status::InvalidArgument("a site declares at most " + std::to_string(kMaxSiteDatasets) +
                                   " datasets");
  }
  std::map<std::string, SiteDataset> incoming;
  for (size_t i = 0; i < list->size(); ++i) {
    AIRLOCK_ASSIGN_OR_RETURN(SiteDataset d, ParseSiteDataset(agent, (*list)[i], i, now_us));
    if (reserved_.count(d.info.name)) {
      return Status::InvalidArgument("dataset '" + d.info.name +
                                     "' is declared in the kernel's configuration");
    }
    const std::string name = d.info.name;
    if (!incoming.emplace(name, std::move(d)).second) {
      return Status::InvalidArgument("dataset '" + name + "' is listed twice");
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& [name, d] : incoming) {
    auto held = datasets_.find(name);
    if (held != datasets_.end() && held->second.agent != agent) {
      return Status::InvalidArgument("dataset '" + name + "' is owned by site '" +
                                     held->second.agent + "'");
    }
  }
  Replaced replaced;
  replaced.datasets = incoming.size();
  size_t before = 0;
  for (auto it = datasets_.begin(); it != datasets_.end();) {
    if (it->second.agent != agent) {
      ++it;
      continue;
    }
    ++before;
    auto now = incoming.find(it->first);
    if (now == incoming.end() || now->second.info.ToJson() != it->second.info.ToJson() ||
        now->second.error != it->second.error || now->second.key != it->second.key) {
      replaced.changed = true;
    }
    it = datasets_.erase(it);
  }
  if (before != incoming.size()) replaced.changed = true;
  datasets_.merge(incoming);
  received_[agent] = now_us;
  return replaced;
}

std::optional<SiteDataset> SiteCatalog::Find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = datasets_.find(name);
  if (it == datasets_.end()) return std::nullopt;
  return it->second;
}

std::vector<SiteDataset> SiteCatalog::All() const {
  std::lock_guard lock(mu_);
  std::vector<SiteDataset> out;
  out.reserve(datasets_.size());
  for (const auto& [name, d] : datasets_) out.push_back(d);
  return out;
}

Result<std::string> AgentForDatasets(const KernelConfig& config, const SiteCatalog* sites,
                                     const std::vector<std::string>& datasets) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string agent, AgentForDatasets(config, datasets));
  if (sites == nullptr) return agent;
  bool any_configured = false;
  for (const std::string& name : datasets) {
    for (const auto& d : config.datasets) any_configured = any_configured || d.name == name;
  }
  std::optional<std::string> site_agent;
  for (const std::string& name : datasets) {
    auto owned = sites->Find(name);
    if (!owned) continue;
    const bool clash =
        (site_agent && *site_agent != owned->agent) || (any_configured && agent != owned->agent);
    if (clash) {
      return Status::InvalidArgument(
          "the datasets live on different hosts (" +
          (agent.empty() && !site_agent ? std::string("the kernel's")
                                        : "agent '" + site_agent.value_or(agent) + "'") +
          " and agent '" + owned->agent + "'); one request's enclave runs on one host");
    }
    site_agent = owned->agent;
  }
  return site_agent.value_or(agent);
}

}  // namespace airlock
