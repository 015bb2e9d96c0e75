#include "kernel/core/catalog_document.h"

namespace airlock {

using nlohmann::json;

CatalogDocument::CatalogDocument(const KernelConfig& config) {
  json datasets = json::array();
  for (const auto& d : config.datasets) {
    json entry = d.ToJson();
    entry.erase("object");  // where the data lives is the connector's business
    entry["schema"] = {{"source", d.columns.empty() ? "none" : "configuration"}};
    // The declared key tells people writing joins which lookups are one search.
    if (auto key = config.dataset_keys.find(d.name); key != config.dataset_keys.end()) {
      entry["key"] = key->second;
    }
    datasets.push_back(std::move(entry));
  }
  document_ = {{"datasets", std::move(datasets)}};
}

json CatalogDocument::Get() const {
  std::lock_guard lock(mu_);
  return document_;
}

void CatalogDocument::Merge(const json& described, int64_t at_us) {
  const json found = described.value("datasets", json::object());
  const json errors = described.value("errors", json::object());
  std::lock_guard lock(mu_);
  for (json& entry : document_["datasets"]) {
    const std::string name = entry.value("name", "");
    json& schema = entry["schema"];
    if (auto error = errors.find(name); error != errors.end() && error->is_string()) {
      schema["error"] = *error;
      schema["described_at_us"] = at_us;
      continue;
    }
    auto it = found.find(name);
    if (it == found.end() || !it->is_object()) continue;
    schema.erase("error");
    schema["described_at_us"] = at_us;
    if (schema.value("source", "") != "configuration") {
      entry["columns"] = it->value("columns", json::array());
      schema["source"] = "connector";
    }
    if (entry.value("description", "").empty() && it->contains("description")) {
      entry["description"] = (*it)["description"];
    }
    if (entry.value("tags", json::array()).empty() && it->contains("tags")) {
      entry["tags"] = (*it)["tags"];
    }
    if (auto rows = it->find("rows"); rows != it->end() && rows->is_number_integer()) {
      entry["rows"] = *rows;
    }
  }
}

}  // namespace airlock
