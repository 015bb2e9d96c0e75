#include "kernel/plugin_host/kernel_secrets.h"

#include "kernel/plugin_host/secret_reference.h"

namespace airlock::plugin_host {
namespace {

void Collect(const nlohmann::json& value, std::set<std::string, std::less<>>* out) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.starts_with("env:") || text.starts_with("file:")) out->insert(text);
  } else if (value.is_structured()) {
    for (const auto& item : value) Collect(item, out);
  }
}

}  // namespace

void KernelSecrets::AllowReferencesOf(const nlohmann::json& plugin_config) {
  std::lock_guard<std::mutex> lock(mutex_);
  Collect(plugin_config, &allowed_);
}

Result<Secret> KernelSecrets::Resolve(std::string_view reference) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!allowed_.contains(reference)) {
      return Status::PermissionDenied(
          "the kernel resolves only secret references named in the configuration of its own "
          "plugins (identity, policy, tunnel, isolator); data-source references are resolved "
          "inside enclaves");
    }
  }
  return ResolveSecretReference(reference);
}

}  // namespace airlock::plugin_host
