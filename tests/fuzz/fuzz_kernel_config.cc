// The kernel configuration: the input is written as the configuration file
// and loaded with LoadKernelConfig (nesting bound, parsing, and validation in
// full: server, limits, plugins, connectors, datasets, agents), and, when
// valid, the dataset-to-agent binding every request asks for is computed.
//
// A plugin's `config_file` is read relative to the configuration's directory,
// a private temporary directory holding one policy document; documents naming
// an absolute or parent path are skipped, so the fuzzer never reads a device
// or other files of the machine.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/core/config.h"

namespace {

using nlohmann::json;

std::string g_config_path;

bool NamesOutsideFile(const json& node) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "config_file" && value.is_string()) {
        const std::string& path = value.get_ref<const std::string&>();
        if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos) return true;
      }
      if (NamesOutsideFile(value)) return true;
    }
  } else if (node.is_array()) {
    for (const auto& value : node) {
      if (NamesOutsideFile(value)) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/airlock-fuzz-config-XXXXXX";
  if (::mkdtemp(dir) == nullptr) std::abort();
  g_config_path = std::string(dir) + "/airlock.json";
  std::ofstream(std::string(dir) + "/policy.json") << R"({"version":1,"rules":[]})";
  std::ofstream(std::string(dir) + "/broken.json") << R"({"version":)";
  static const std::string kDir = dir;
  std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(kDir, ignored);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!document.is_discarded() && NamesOutsideFile(document)) return 0;
  std::ofstream(g_config_path, std::ios::binary | std::ios::trunc) << text;
  auto config = airlock::LoadKernelConfig(g_config_path, "/usr/lib/airlock/plugins");
  if (!config.ok()) return 0;
  std::vector<std::string> names;
  for (const auto& dataset : config->datasets) {
    names.push_back(dataset.name);
    (void)airlock::AgentForDatasets(*config, {dataset.name});
  }
  (void)airlock::AgentForDatasets(*config, names);
  return 0;
}
