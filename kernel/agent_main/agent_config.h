// airlock-agent's configuration: one JSON file, validated completely at start.
// Relative paths are resolved against the file's directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/core/config.h"

namespace airlock::agent {

// One kernel replica's agent listener.
struct KernelAddress {
  std::string host;
  uint16_t port = 7443;
  std::string server_name;  // the name its certificate must carry

  std::string ToString() const;
};

struct AgentConfig {
  std::string name;        // as the kernel knows it (agents.agents.<name>)
  std::string config_dir;  // the configuration file's directory
  // The replicas the agent may link to, tried in turn: it dials the next
  // one whenever a dial fails or its link is lost. At least one.
  std::vector<KernelAddress> kernels;
  std::string ca_file;                // the kernel's agent CA (ca.crt)
  std::string state_dir;              // identity.pem (0600): certificate + key
  std::string enrollment_token_file;  // read once, when not yet enrolled
  std::string isolator_plugin;        // path of the isolator shared object
  nlohmann::json isolator_config = nlohmann::json::object();
  // An HTTP forward proxy the link goes through (CONNECT), and the secret
  // reference ("env:NAME" / "file:/path") of its "user:password".
  std::string https_proxy;
  std::string proxy_credentials;
  int64_t reconnect_ms = 1000;
  int64_t connect_timeout_ms = 10000;
  // Renew once less than this fraction of the certificate's lifetime is left.
  double renew_remaining_fraction = 1.0 / 3.0;
  // The datasets this site owns ("connectors" and "datasets", as in the
  // kernel's configuration): their connectors, objects and secret
  // references stay here; only their metadata goes to the kernel, on
  // connect and every sync_interval_seconds. Empty: none.
  SiteSources site;
  int64_t sync_interval_seconds = 300;
};

Result<AgentConfig> LoadAgentConfig(const std::string& path);

// "host:port" or "[v6]:port" (port 1..65535), with `server_name` (default:
// the host) as the name to verify.
Result<KernelAddress> ParseKernelAddress(const std::string& text, const std::string& server_name);

}  // namespace airlock::agent
