#include "kernel/core/connector_access.h"

#include <cstring>
#include <filesystem>

namespace airlock {

using nlohmann::json;

namespace {

bool EndsWith(const std::string& text, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return text.size() >= n && text.compare(text.size() - n, n, suffix) == 0;
}

}  // namespace

void CollectConfigPaths(const json& node, const std::string& key, const std::string& config_dir,
                        int depth, std::vector<std::string>* out) {
  if (depth > 16) return;
  if (node.is_object()) {
    for (const auto& item : node.items()) {
      if (item.key() == "$config_dir") continue;
      CollectConfigPaths(item.value(), item.key(), config_dir, depth + 1, out);
    }
    return;
  }
  if (node.is_array()) {
    for (const auto& item : node) CollectConfigPaths(item, key, config_dir, depth + 1, out);
    return;
  }
  if (!node.is_string()) return;
  std::string path = node.get<std::string>();
  if (path.rfind("file:", 0) == 0) {
    path = path.substr(5);
  } else if (!(key == "root" || EndsWith(key, "_file") || EndsWith(key, "_dir") ||
               EndsWith(key, "_path"))) {
    return;
  }
  if (path.empty() || path.find('\0') != std::string::npos) return;
  std::filesystem::path resolved(path);
  if (resolved.is_relative()) {
    if (config_dir.empty()) return;
    resolved = std::filesystem::path(config_dir) / resolved;
  }
  std::string normal = resolved.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  out->push_back(std::move(normal));
}

void CollectEnvReferences(const json& node, int depth, std::set<std::string>* out) {
  if (depth > 16) return;
  if (node.is_object() || node.is_array()) {
    for (const auto& item : node) CollectEnvReferences(item, depth + 1, out);
    return;
  }
  if (!node.is_string()) return;
  const std::string& text = node.get_ref<const std::string&>();
  if (text.size() > 4 && text.rfind("env:", 0) == 0) out->insert(text.substr(4));
}

json ConnectorJson(const PluginRef& connector) {
  json out = {{"name", connector.name}, {"path", connector.path}, {"config", connector.config}};
  if (connector.sha256) out["sha256"] = *connector.sha256;
  return out;
}

void CollectConnectorAccess(const PluginRef& connector, const std::string& config_dir,
                            ConnectorAccess* out) {
  out->read_paths.insert(connector.path);
  out->read_paths.insert(connector.read_paths.begin(), connector.read_paths.end());
  std::vector<std::string> named;
  CollectConfigPaths(connector.config, "", config_dir, 0, &named);
  out->read_paths.insert(named.begin(), named.end());
  CollectEnvReferences(connector.config, 0, &out->secret_env);
  out->endpoints.insert(connector.egress.begin(), connector.egress.end());
}

}  // namespace airlock
