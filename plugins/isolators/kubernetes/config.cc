#include "config.h"

#include <algorithm>
#include <cctype>

#include "airlock/cpp/config_read.hpp"
#include "kubeconfig.h"

namespace airlock::isolators::kubernetes {
namespace {

constexpr const char* kWhere = "kubernetes isolator configuration";
constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

std::string At(const std::string& key) {
  return std::string(kWhere) + "." + key;
}

bool IsAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

Status StringMap(const Json& j, const std::string& key, std::map<std::string, std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return Status::InvalidArgument(At(key) + " must be an object of strings");
  out->clear();
  for (const auto& item : it->items()) {
    if (!item.value().is_string()) {
      return Status::InvalidArgument(At(key) + "." + item.key().substr(0, 64) +
                                     " must be a string");
    }
    (*out)[item.key()] = item.value().get<std::string>();
  }
  return Status::Ok();
}

Status ParseCluster(const Json& j, const sdk::Host& host,
                    const std::map<std::string, std::string>& environment, ClusterAccess* out) {
  auto it = j.find("cluster");
  if (it == j.end() || !it->is_object()) {
    return Status::InvalidArgument(At("cluster") +
                                   " is required: {\"in_cluster\": true}, {\"kubeconfig\": "
                                   "PATH} or {\"server\", \"ca_file\", \"token_file\" | "
                                   "\"token\"}");
  }
  const Json& c = *it;
  const std::string where = At("cluster");
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(
      c, {"in_cluster", "kubeconfig", "context", "server", "ca_file", "token_file", "token"},
      where));
  if (c.contains("kubeconfig")) {
    std::string path, context;
    AIRLOCK_RETURN_IF_ERROR(
        sdk::config_read::File(c, "kubeconfig", host.config_dir(), &path, true, where));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "context", &context, false, where));
    if (c.size() > (c.contains("context") ? 2u : 1u)) {
      return Status::InvalidArgument(where + ": kubeconfig takes no other keys but context");
    }
    AIRLOCK_ASSIGN_OR_RETURN(*out, ReadKubeconfig(path, context));
    return Status::Ok();
  }
  bool in_cluster = false;
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::Bool(c, "in_cluster", &in_cluster, where));
  if (in_cluster) {
    if (c.size() != 1) {
      return Status::InvalidArgument(where + ": in_cluster takes no other keys");
    }
    const auto service_host = environment.find("KUBERNETES_SERVICE_HOST");
    const auto service_port = environment.find("KUBERNETES_SERVICE_PORT");
    if (service_host == environment.end() || service_port == environment.end()) {
      return Status::FailedPrecondition(
          where +
          ".in_cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
          "set; the kernel is not running in a pod");
    }
    const bool v6 = service_host->second.find(':') != std::string::npos;
    out->server = "https://" + (v6 ? "[" + service_host->second + "]" : service_host->second) +
                  ":" + service_port->second;
    out->ca_file = std::string(kServiceAccountDir) + "/ca.crt";
    out->token_file = std::string(kServiceAccountDir) + "/token";
    return Status::Ok();
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "server", &out->server, true, where));
  if (out->server.rfind("https://", 0) != 0 || out->server.size() > 2048) {
    return Status::InvalidArgument(where + ".server must be an https:// URL");
  }
  while (!out->server.empty() && out->server.back() == '/') out->server.pop_back();
  AIRLOCK_RETURN_IF_ERROR(
      sdk::config_read::File(c, "ca_file", host.config_dir(), &out->ca_file, true, where));
  AIRLOCK_RETURN_IF_ERROR(
      sdk::config_read::File(c, "token_file", host.config_dir(), &out->token_file, false, where));
  AIRLOCK_RETURN_IF_ERROR(
      sdk::config_read::SecretReference(c, "token", &out->token_reference, false, where));
  if (out->token_file.empty() == out->token_reference.empty()) {
    return Status::InvalidArgument(where + ": name exactly one of token_file and token");
  }
  return Status::Ok();
}

Status ParseLink(const Json& j, const std::map<std::string, std::string>& environment,
                 KubernetesConfig* out) {
  const std::string where = At("link");
  auto it = j.find("link");
  const Json link = (it != j.end() && it->is_object()) ? *it : Json::object();
  if (it != j.end() && !it->is_object())
    return Status::InvalidArgument(where + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(
      sdk::config_read::KnownKeys(link,
                                  {"listen_address", "port", "advertise_host", "kernel_cidr",
                                   "kernel_namespace", "kernel_pod_labels"},
                                  where));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(link, "listen_address", &out->link_listen_address, false, where));
  AIRLOCK_RETURN_IF_ERROR(
      sdk::config_read::Bounded(link, "port", 0, 65535, &out->link_port, where));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(link, "advertise_host", &out->link_advertise_host, false, where));
  if (out->link_advertise_host.empty()) {
    if (auto ip = environment.find("POD_IP"); ip != environment.end()) {
      out->link_advertise_host = ip->second;
    }
  }
  if (out->link_advertise_host.empty() || out->link_advertise_host.size() > 253) {
    return Status::InvalidArgument(
        where + ".advertise_host (what enclaves dial) is required when POD_IP is not set");
  }
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(link, "kernel_cidr", &out->kernel_peer.cidr, false, where));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(link, "kernel_namespace", &out->kernel_peer.namespace_name, false, where));
  AIRLOCK_RETURN_IF_ERROR(StringMap(link, "kernel_pod_labels", &out->kernel_peer.pod_labels));
  if (out->kernel_peer.cidr.empty() && out->kernel_peer.pod_labels.empty()) {
    // An IP literal the enclaves dial is also where their policy lets them go.
    const std::string& h = out->link_advertise_host;
    const bool ip = !h.empty() && std::all_of(h.begin(), h.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
    }) && h.find_first_of(".:") != std::string::npos;
    if (!ip) {
      return Status::InvalidArgument(
          where +
          ": advertise_host is a name; set kernel_cidr or kernel_pod_labels so the "
          "enclaves' NetworkPolicy can let them reach the kernel");
    }
    out->kernel_peer.cidr = h + (h.find(':') != std::string::npos ? "/128" : "/32");
  }
  return Status::Ok();
}

}  // namespace

bool IsLabelValue(const std::string& value) {
  if (value.empty()) return true;
  if (value.size() > 63 || !IsAlnum(value.front()) || !IsAlnum(value.back())) return false;
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool IsDnsLabel(const std::string& value) {
  if (value.empty() || value.size() > 63) return false;
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_alnum(value.front()) || !lower_alnum(value.back())) return false;
  return std::all_of(value.begin(), value.end(),
                     [&](char c) { return lower_alnum(c) || c == '-'; });
}

Result<KubernetesConfig> ParseConfig(const Json& config, const sdk::Host& host,
                                     const std::map<std::string, std::string>& environment) {
  if (!config.is_object())
    return Status::InvalidArgument(std::string(kWhere) + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(
      config,
      {"cluster", "namespace", "image", "image_pull_policy", "enclave_command", "runtime_class",
       "node_selector", "cpu", "kernel_id", "link", "dns_namespace", "dns_pod_labels", "secrets",
       "mounts", "image_paths", "provision_timeout_ms", "deadline_slack_seconds", "min_isolation"},
      kWhere));
  KubernetesConfig out;
  AIRLOCK_RETURN_IF_ERROR(ParseCluster(config, host, environment, &out.cluster));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(config, "namespace", &out.namespace_name, true, kWhere));
  if (!IsDnsLabel(out.namespace_name)) {
    return Status::InvalidArgument(At("namespace") + " is not a Kubernetes namespace name");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "image", &out.image, true, kWhere));
  if (out.image.empty() || out.image.size() > 1024) {
    return Status::InvalidArgument(At("image") + " must name the airlock-enclave image");
  }
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(config, "image_pull_policy", &out.image_pull_policy, false, kWhere));
  if (!out.image_pull_policy.empty() && out.image_pull_policy != "Always" &&
      out.image_pull_policy != "IfNotPresent" && out.image_pull_policy != "Never") {
    return Status::InvalidArgument(At("image_pull_policy") +
                                   " must be Always, IfNotPresent or Never");
  }
  if (config.contains("enclave_command")) {
    AIRLOCK_RETURN_IF_ERROR(
        json_read::StringList(config, "enclave_command", &out.enclave_command, true, kWhere));
    if (out.enclave_command.empty() || out.enclave_command.size() > 16) {
      return Status::InvalidArgument(At("enclave_command") + " must have 1 to 16 elements");
    }
  }
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(config, "runtime_class", &out.runtime_class, false, kWhere));
  if (!out.runtime_class.empty() && !IsDnsLabel(out.runtime_class)) {
    return Status::InvalidArgument(At("runtime_class") + " is not a RuntimeClass name");
  }
  AIRLOCK_RETURN_IF_ERROR(StringMap(config, "node_selector", &out.node_selector));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "cpu", &out.cpu, false, kWhere));

  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "kernel_id", &out.kernel_id, false, kWhere));
  if (out.kernel_id.empty()) {
    if (auto h = environment.find("HOSTNAME"); h != environment.end()) out.kernel_id = h->second;
  }
  if (out.kernel_id.empty() || !IsLabelValue(out.kernel_id)) {
    return Status::InvalidArgument(
        At("kernel_id") +
        " (defaults to HOSTNAME) must be a Kubernetes label value: it labels this kernel's "
        "enclaves so that a restart removes exactly those");
  }
  AIRLOCK_RETURN_IF_ERROR(ParseLink(config, environment, &out));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(config, "dns_namespace", &out.dns_namespace, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(StringMap(config, "dns_pod_labels", &out.dns_pod_labels));

  if (auto it = config.find("secrets"); it != config.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument(At("secrets") + " must be an object");
    for (const auto& item : it->items()) {
      const std::string where = At("secrets") + "." + item.key().substr(0, 64);
      const Json& ref = item.value();
      if (!ref.is_object()) return Status::InvalidArgument(where + " must be {secret, key}");
      AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(ref, {"secret", "key"}, where));
      SecretKeyRef r;
      AIRLOCK_RETURN_IF_ERROR(json_read::String(ref, "secret", &r.secret, true, where));
      AIRLOCK_RETURN_IF_ERROR(json_read::String(ref, "key", &r.key, true, where));
      if (r.secret.empty() || r.key.empty()) {
        return Status::InvalidArgument(where + ": secret and key must not be empty");
      }
      out.secrets[item.key()] = r;
    }
  }
  if (auto it = config.find("mounts"); it != config.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument(At("mounts") + " must be an object");
    for (const auto& item : it->items()) {
      const std::string where = At("mounts") + "." + item.key().substr(0, 128);
      if (item.key().empty() || item.key()[0] != '/' || item.key().size() > 1024 ||
          item.key().find("/../") != std::string::npos) {
        return Status::InvalidArgument(where + ": the key must be an absolute file path");
      }
      const Json& m = item.value();
      if (!m.is_object())
        return Status::InvalidArgument(where + " must be {secret|config_map, key}");
      AIRLOCK_RETURN_IF_ERROR(
          sdk::config_read::KnownKeys(m, {"secret", "config_map", "key"}, where));
      FileMount mount;
      AIRLOCK_RETURN_IF_ERROR(json_read::String(m, "secret", &mount.secret, false, where));
      AIRLOCK_RETURN_IF_ERROR(json_read::String(m, "config_map", &mount.config_map, false, where));
      AIRLOCK_RETURN_IF_ERROR(json_read::String(m, "key", &mount.key, true, where));
      if (mount.secret.empty() == mount.config_map.empty() || mount.key.empty()) {
        return Status::InvalidArgument(where +
                                       ": name a key of exactly one of secret and config_map");
      }
      out.mounts[item.key()] = mount;
    }
  }
  if (config.contains("image_paths")) {
    AIRLOCK_RETURN_IF_ERROR(
        json_read::StringList(config, "image_paths", &out.image_paths, true, kWhere));
    for (auto& path : out.image_paths) {
      if (path.empty() || path[0] != '/') {
        return Status::InvalidArgument(At("image_paths") + ": '" + path.substr(0, 128) +
                                       "' is not an absolute directory");
      }
      if (path.back() != '/') path += '/';
    }
  }
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::Millis(config, "provision_timeout_ms", 1000, 3600000,
                                                   &out.provision_timeout, kWhere));
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::Bounded(config, "deadline_slack_seconds", 60, 86400,
                                                    &out.deadline_slack_seconds, kWhere));
  std::vector<std::string> minimum;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(config, "min_isolation", &minimum, false, kWhere));
  for (const auto& name : minimum) {
    const bool known = std::any_of(std::begin(kMechanismNames), std::end(kMechanismNames),
                                   [&](const char* m) { return name == m; });
    if (!known) {
      return Status::InvalidArgument(At("min_isolation") + ": unknown mechanism '" +
                                     name.substr(0, 64) + "'");
    }
    out.min_isolation.insert(name);
  }
  if (out.min_isolation.count("runtime_class") && out.runtime_class.empty()) {
    return Status::FailedPrecondition(
        At("min_isolation") + " requires runtime_class, but no runtime_class is configured");
  }
  return out;
}

}  // namespace airlock::isolators::kubernetes
