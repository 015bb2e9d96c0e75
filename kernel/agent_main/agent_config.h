// airlock-agent's configuration: one JSON file, validated completely at start.
// Relative paths are resolved against the file's directory.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::agent {

struct AgentConfig {
  std::string name;            // as the kernel knows it (agents.agents.<name>)
  std::string kernel_address;  // host the agent dials
  uint16_t kernel_port = 7443;
  std::string kernel_server_name;     // name the kernel's certificate must carry
  std::string ca_file;                // the kernel's agent CA (ca.crt)
  std::string state_dir;              // identity.pem (0600): certificate + key
  std::string enrollment_token_file;  // read once, when not yet enrolled
  std::string isolator_plugin;        // path of the isolator shared object
  nlohmann::json isolator_config = nlohmann::json::object();
  int64_t reconnect_ms = 1000;
  int64_t connect_timeout_ms = 10000;
  // Renew once less than this fraction of the certificate's lifetime is left.
  double renew_remaining_fraction = 1.0 / 3.0;
};

Result<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace airlock::agent
