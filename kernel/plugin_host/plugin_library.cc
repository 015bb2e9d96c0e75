#include "kernel/plugin_host/plugin_library.h"

#include <boost/dll/shared_library.hpp>

namespace airlock::plugin_host {

const char* PluginKindName(airlock_type_plugin_kind kind) {
  switch (kind) {
    case AIRLOCK_KIND_IDENTITY:
      return "identity";
    case AIRLOCK_KIND_POLICY:
      return "policy";
    case AIRLOCK_KIND_CONNECTOR:
      return "connector";
    case AIRLOCK_KIND_TUNNEL:
      return "tunnel";
    case AIRLOCK_KIND_ISOLATOR:
      return "isolator";
    case AIRLOCK_KIND_NOTIFIER:
      return "notifier";
    default:
      return "unknown";
  }
}

std::string PluginKindPhrase(airlock_type_plugin_kind kind) {
  const bool vowel = kind == AIRLOCK_KIND_IDENTITY || kind == AIRLOCK_KIND_ISOLATOR ||
                     VtableMinimumSize(kind) == 0;  // "an unknown plugin"
  return std::string(vowel ? "an " : "a ") + PluginKindName(kind) + " plugin";
}

std::optional<airlock_type_plugin_kind> ParsePluginKind(std::string_view name) {
  if (name == "identity") return AIRLOCK_KIND_IDENTITY;
  if (name == "policy") return AIRLOCK_KIND_POLICY;
  if (name == "connector") return AIRLOCK_KIND_CONNECTOR;
  if (name == "tunnel") return AIRLOCK_KIND_TUNNEL;
  if (name == "isolator") return AIRLOCK_KIND_ISOLATOR;
  if (name == "notifier") return AIRLOCK_KIND_NOTIFIER;
  return std::nullopt;
}

size_t VtableMinimumSize(airlock_type_plugin_kind kind) {
  switch (kind) {
    case AIRLOCK_KIND_IDENTITY:
      return AIRLOCK_IDENTITY_VTABLE_1_0_SIZE;
    case AIRLOCK_KIND_POLICY:
      return AIRLOCK_POLICY_VTABLE_1_0_SIZE;
    case AIRLOCK_KIND_CONNECTOR:
      return AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE;
    case AIRLOCK_KIND_TUNNEL:
      return AIRLOCK_TUNNEL_VTABLE_1_0_SIZE;
    case AIRLOCK_KIND_ISOLATOR:
      return AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE;
    case AIRLOCK_KIND_NOTIFIER:
      return AIRLOCK_NOTIFIER_VTABLE_1_2_SIZE;  // the kind's first table
    default:
      return 0;
  }
}

PluginLibrary::PluginLibrary(std::unique_ptr<boost::dll::shared_library> library,
                             PluginManifest manifest, const void* vtable, size_t vtable_size,
                             airlock_on_check_config_plugin_ptr check_config)
    : library_(std::move(library)),
      manifest_(std::move(manifest)),
      vtable_(vtable),
      vtable_size_(vtable_size),
      check_config_(check_config) {}

PluginLibrary::~PluginLibrary() = default;

}  // namespace airlock::plugin_host
