#include "kernel/agent_main/agent_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include "kernel/agent_main/proxy_connect.h"

namespace airlock::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Resolve(const std::string& base, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base) / path).lexically_normal().string();
}

Status RejectUnknown(const json& node, const std::set<std::string>& known,
                     const std::string& where) {
  for (const auto& [key, value] : node.items()) {
    if (!known.count(key)) return Status::InvalidArgument(where + key + " is not a known setting");
  }
  return Status::Ok();
}

Status Str(const json& node, const char* key, std::string* out, bool required,
           const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) {
    return required ? Status::InvalidArgument(where + key + " is required") : Status::Ok();
  }
  if (!it->is_string()) return Status::InvalidArgument(where + key + " must be a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status Int(const json& node, const char* key, int64_t* out, int64_t min, int64_t max,
           const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
    return Status::InvalidArgument(where + key + " must be an integer between " +
                                   std::to_string(min) + " and " + std::to_string(max));
  }
  *out = it->get<int64_t>();
  return Status::Ok();
}

}  // namespace

std::string KernelAddress::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<KernelAddress> ParseKernelAddress(const std::string& text, const std::string& server_name) {
  const auto refuse = [&] {
    return Status::InvalidArgument("kernel.addresses entry '" + text.substr(0, 200) +
                                   "' is not host:port");
  };
  KernelAddress out;
  std::string port;
  if (text.starts_with("[")) {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return refuse();
    }
    out.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return refuse();
    out.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (out.host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return refuse();
  }
  const int number = std::stoi(port);
  if (number < 1 || number > 65535) return refuse();
  out.port = static_cast<uint16_t>(number);
  out.server_name = server_name.empty() ? out.host : server_name;
  return out;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read configuration file " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const json doc = json::parse(buffer.str(), nullptr, false);
  if (!doc.is_object()) return Status::InvalidArgument(path + " is not a JSON object");
  const std::string base = fs::absolute(path).parent_path().string();
  AgentConfig c;
  c.config_dir = base;
  AIRLOCK_RETURN_IF_ERROR(
      RejectUnknown(doc,
                    {"name", "kernel", "state_dir", "enrollment_token_file", "isolator",
                     "reconnect_ms", "renew_remaining_fraction", "connectors", "datasets",
                     "sync_interval_seconds", "$schema", "description"},
                    ""));
  AIRLOCK_RETURN_IF_ERROR(Str(doc, "name", &c.name, true, ""));
  AIRLOCK_RETURN_IF_ERROR(Str(doc, "state_dir", &c.state_dir, true, ""));
  c.state_dir = Resolve(base, c.state_dir);
  AIRLOCK_RETURN_IF_ERROR(Str(doc, "enrollment_token_file", &c.enrollment_token_file, false, ""));
  c.enrollment_token_file = Resolve(base, c.enrollment_token_file);
  AIRLOCK_RETURN_IF_ERROR(Int(doc, "reconnect_ms", &c.reconnect_ms, 50, 600000, ""));
  if (auto f = doc.find("renew_remaining_fraction"); f != doc.end()) {
    if (!f->is_number() || f->get<double>() <= 0.05 || f->get<double>() >= 0.95) {
      return Status::InvalidArgument("renew_remaining_fraction must be a number in (0.05, 0.95)");
    }
    c.renew_remaining_fraction = f->get<double>();
  }
  auto kernel = doc.find("kernel");
  if (kernel == doc.end() || !kernel->is_object()) {
    return Status::InvalidArgument(
        "kernel is required: {\"address\",\"port\",\"ca_file\"} or "
        "{\"addresses\":[\"host:port\",...],\"ca_file\"}");
  }
  AIRLOCK_RETURN_IF_ERROR(RejectUnknown(*kernel,
                                        {"address", "port", "addresses", "server_name", "ca_file",
                                         "connect_timeout_ms", "https_proxy", "proxy_credentials"},
                                        "kernel."));
  AIRLOCK_RETURN_IF_ERROR(Str(*kernel, "https_proxy", &c.https_proxy, false, "kernel."));
  if (!c.https_proxy.empty()) AIRLOCK_RETURN_IF_ERROR(ParseProxyUrl(c.https_proxy).status());
  AIRLOCK_RETURN_IF_ERROR(
      Str(*kernel, "proxy_credentials", &c.proxy_credentials, false, "kernel."));
  if (!c.proxy_credentials.empty()) {
    if (c.https_proxy.empty()) {
      return Status::InvalidArgument("kernel.proxy_credentials needs kernel.https_proxy");
    }
    const bool reference =
        (c.proxy_credentials.rfind("env:", 0) == 0 && c.proxy_credentials.size() > 4) ||
        (c.proxy_credentials.rfind("file:/", 0) == 0 && c.proxy_credentials.size() > 6);
    if (!reference) {
      return Status::InvalidArgument(
          "kernel.proxy_credentials must be a secret reference (env:NAME or file:/path) to "
          "\"user:password\", not the credentials");
    }
  }
  std::string server_name;
  AIRLOCK_RETURN_IF_ERROR(Str(*kernel, "server_name", &server_name, false, "kernel."));
  if (auto list = kernel->find("addresses"); list != kernel->end()) {
    // Every replica's listener: the agent links to whichever answers.
    if (kernel->contains("address") || kernel->contains("port")) {
      return Status::InvalidArgument("kernel.addresses replaces kernel.address and kernel.port");
    }
    if (!list->is_array() || list->empty() || list->size() > 64) {
      return Status::InvalidArgument("kernel.addresses must be a list of 1..64 \"host:port\"");
    }
    for (const json& entry : *list) {
      if (!entry.is_string()) {
        return Status::InvalidArgument("kernel.addresses entries must be \"host:port\" strings");
      }
      AIRLOCK_ASSIGN_OR_RETURN(KernelAddress address,
                               ParseKernelAddress(entry.get<std::string>(), server_name));
      c.kernels.push_back(std::move(address));
    }
  } else {
    KernelAddress address;
    AIRLOCK_RETURN_IF_ERROR(Str(*kernel, "address", &address.host, true, "kernel."));
    int64_t port = address.port;
    AIRLOCK_RETURN_IF_ERROR(Int(*kernel, "port", &port, 1, 65535, "kernel."));
    address.port = static_cast<uint16_t>(port);
    address.server_name = server_name.empty() ? address.host : server_name;
    c.kernels.push_back(std::move(address));
  }
  AIRLOCK_RETURN_IF_ERROR(Str(*kernel, "ca_file", &c.ca_file, true, "kernel."));
  c.ca_file = Resolve(base, c.ca_file);
  AIRLOCK_RETURN_IF_ERROR(
      Int(*kernel, "connect_timeout_ms", &c.connect_timeout_ms, 100, 600000, "kernel."));
  auto isolator = doc.find("isolator");
  if (isolator == doc.end() || !isolator->is_object()) {
    return Status::InvalidArgument("isolator is required: {\"plugin\",\"config\"}");
  }
  AIRLOCK_RETURN_IF_ERROR(RejectUnknown(*isolator, {"plugin", "config"}, "isolator."));
  AIRLOCK_RETURN_IF_ERROR(Str(*isolator, "plugin", &c.isolator_plugin, true, "isolator."));
  c.isolator_plugin = Resolve(base, c.isolator_plugin);
  if (auto cfg = isolator->find("config"); cfg != isolator->end()) {
    if (!cfg->is_object()) return Status::InvalidArgument("isolator.config must be an object");
    c.isolator_config = *cfg;
  }
  c.isolator_config["$config_dir"] = base;
  if (doc.contains("connectors") || doc.contains("datasets")) {
    AIRLOCK_ASSIGN_OR_RETURN(c.site, ParseSiteSources(doc, base, base));
  }
  AIRLOCK_RETURN_IF_ERROR(
      Int(doc, "sync_interval_seconds", &c.sync_interval_seconds, 1, 86400, ""));
  return c;
}

}  // namespace airlock::agent
