#include "enclave_objects.h"

#include <algorithm>

#include "airlock/cpp/base64url.hpp"

namespace airlock::isolators::kubernetes {
namespace {

std::string DnsSafe(const std::string& text, size_t max) {
  std::string out;
  for (char c : text) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    if (ok) {
      out += lower;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= max) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "x" : out;
}

Json MatchLabels(const std::map<std::string, std::string>& labels) {
  Json out = Json::object();
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

Json NamespacePeer(const std::string& namespace_name,
                   const std::map<std::string, std::string>& pod_labels) {
  Json peer = {{"podSelector", {{"matchLabels", MatchLabels(pod_labels)}}}};
  if (!namespace_name.empty()) {
    peer["namespaceSelector"] = {
        {"matchLabels", {{"kubernetes.io/metadata.name", namespace_name}}}};
  }
  return peer;
}

}  // namespace

std::string RequestLabel(const std::string& request_id) {
  return DnsSafe(request_id, 63);
}

std::string EnclaveName(const std::string& request_id, const std::string& suffix) {
  const std::string prefix = "airlock-enclave-";
  const size_t room = 63 - prefix.size() - 1 - suffix.size();
  return prefix + DnsSafe(request_id, room) + "-" + suffix;
}

void SetOwner(Json& object, const std::string& pod_name, const std::string& pod_uid) {
  object["metadata"]["ownerReferences"] =
      Json::array({{{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod_name}, {"uid", pod_uid}}});
}

std::string PolicyName(const std::string& pod_name) {
  return pod_name;
}
std::string LinkSecretName(const std::string& pod_name) {
  return pod_name + "-link";
}

Json EnclaveLabels(const KubernetesConfig& config, const EnclaveInputs& in) {
  return {{"app.kubernetes.io/name", "airlock-enclave"},
          {"app.kubernetes.io/managed-by", "airlock"},
          {"airlock.dev/kernel", config.kernel_id},
          {"airlock.dev/request", RequestLabel(in.request_id)},
          {"airlock.dev/enclave", in.name}};
}

Result<EnclaveObjects> BuildEnclaveObjects(const KubernetesConfig& config,
                                           const EnclaveInputs& in) {
  const Json labels = EnclaveLabels(config, in);
  const Json annotations = {{"airlock.dev/request-id", in.request_id},
                            {"airlock.dev/owner", config.kernel_id}};
  auto metadata = [&](const std::string& name) {
    return Json{{"name", name},
                {"namespace", config.namespace_name},
                {"labels", labels},
                {"annotations", annotations}};
  };

  // Connector secrets: Kubernetes fills them from the namespace's Secrets
  // inside the pod; the kernel never reads them.
  Json env = Json::array();
  for (const auto& name : in.secret_env) {
    auto it = config.secrets.find(name);
    if (it == config.secrets.end()) {
      return Status::FailedPrecondition(
          "a connector reads the secret reference env:" + name.substr(0, 128) +
          ", which the kubernetes isolator's configuration does not map to a Kubernetes Secret "
          "(add it under secrets)");
    }
    env.push_back({{"name", name},
                   {"valueFrom",
                    {{"secretKeyRef", {{"name", it->second.secret}, {"key", it->second.key}}}}}});
  }

  const std::string memory = std::to_string(in.memory_bytes + kPodMemoryOverheadBytes);
  Json resources = {{"requests", {{"memory", memory}}}, {"limits", {{"memory", memory}}}};
  if (!config.cpu.empty()) {
    resources["requests"]["cpu"] = config.cpu;
    resources["limits"]["cpu"] = config.cpu;
  }
  Json command = config.enclave_command;
  command.push_back("--dial");
  command.push_back(in.kernel_address);
  command.push_back("--link-dir");
  command.push_back(kLinkMountPath);

  // Files the connectors read: each from its Secret or ConfigMap key, alone
  // at its path (subPath), read-only.
  Json volume_mounts =
      Json::array({{{"name", "link"}, {"mountPath", kLinkMountPath}, {"readOnly", true}},
                   {{"name", "tmp"}, {"mountPath", "/tmp"}}});
  Json file_volumes = Json::array();
  for (size_t i = 0; i < in.read_paths.size(); ++i) {
    const std::string& path = in.read_paths[i];
    auto it = config.mounts.find(path);
    if (it == config.mounts.end()) {
      return Status::FailedPrecondition(
          "a connector reads " + path.substr(0, 256) +
          ", which a pod cannot see on the kernel's host: map it to a Secret or ConfigMap key "
          "under the kubernetes isolator's mounts");
    }
    const std::string name = "file-" + std::to_string(i);
    const FileMount& m = it->second;
    Json items = Json::array({{{"key", m.key}, {"path", m.key}}});
    file_volumes.push_back(
        m.secret.empty()
            ? Json{{"name", name}, {"configMap", {{"name", m.config_map}, {"items", items}}}}
            : Json{{"name", name}, {"secret", {{"secretName", m.secret}, {"items", items}}}});
    volume_mounts.push_back(
        {{"name", name}, {"mountPath", path}, {"subPath", m.key}, {"readOnly", true}});
  }

  Json container = {{"name", "enclave"},
                    {"image", config.image},
                    {"command", command},
                    {"env", env},
                    {"resources", resources},
                    {"securityContext",
                     {{"privileged", false},
                      {"allowPrivilegeEscalation", false},
                      {"readOnlyRootFilesystem", true},
                      {"runAsNonRoot", true},
                      {"capabilities", {{"drop", {"ALL"}}}},
                      {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
                    {"volumeMounts", volume_mounts}};
  if (!config.image_pull_policy.empty()) container["imagePullPolicy"] = config.image_pull_policy;

  Json spec = {{"restartPolicy", "Never"},
               {"automountServiceAccountToken", false},
               {"enableServiceLinks", false},
               {"activeDeadlineSeconds", in.active_deadline_seconds},
               {"terminationGracePeriodSeconds", 5},
               {"securityContext",
                {{"runAsNonRoot", true},
                 {"runAsUser", 65532},
                 {"runAsGroup", 65532},
                 // The link Secret's files belong to this group, so the
                 // non-root enclave reads its own credential (mode 0440).
                 {"fsGroup", 65532},
                 {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
               {"containers", {container}},
               {"volumes",
                {{{"name", "link"},
                  {"secret", {{"secretName", LinkSecretName(in.name)}, {"defaultMode", 0440}}}},
                 {{"name", "tmp"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "64Mi"}}}}}}};
  for (auto& v : file_volumes) spec["volumes"].push_back(std::move(v));
  if (!config.runtime_class.empty()) spec["runtimeClassName"] = config.runtime_class;
  if (!config.node_selector.empty()) spec["nodeSelector"] = MatchLabels(config.node_selector);

  EnclaveObjects out;
  out.pod = {
      {"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", metadata(in.name)}, {"spec", spec}};

  // Egress: each approved source on its port, the kernel's link, DNS only
  // when a source is named by host. No ingress at all.
  Json egress = Json::array();
  bool needs_dns = false;
  for (const auto& peer : in.egress) {
    Json to = Json::array();
    for (const auto& cidr : peer.cidrs) to.push_back({{"ipBlock", {{"cidr", cidr}}}});
    egress.push_back({{"to", to}, {"ports", {{{"protocol", "TCP"}, {"port", peer.port}}}}});
    needs_dns = needs_dns || peer.named;
  }
  Json kernel_peer =
      config.kernel_peer.cidr.empty()
          ? NamespacePeer(config.kernel_peer.namespace_name, config.kernel_peer.pod_labels)
          : Json{{"ipBlock", {{"cidr", config.kernel_peer.cidr}}}};
  egress.push_back(
      {{"to", {kernel_peer}}, {"ports", {{{"protocol", "TCP"}, {"port", config.link_port}}}}});
  if (needs_dns) {
    egress.push_back(
        {{"to", {NamespacePeer(config.dns_namespace, config.dns_pod_labels)}},
         {"ports", {{{"protocol", "UDP"}, {"port", 53}}, {{"protocol", "TCP"}, {"port", 53}}}}});
  }
  out.network_policy = {{"apiVersion", "networking.k8s.io/v1"},
                        {"kind", "NetworkPolicy"},
                        {"metadata", metadata(PolicyName(in.name))},
                        {"spec",
                         {{"podSelector", {{"matchLabels", {{"airlock.dev/enclave", in.name}}}}},
                          {"policyTypes", {"Ingress", "Egress"}},
                          {"ingress", Json::array()},
                          {"egress", egress}}}};

  out.secret = {{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"type", "Opaque"},
                {"metadata", metadata(LinkSecretName(in.name))},
                {"data",
                 {{"ca.crt", sdk::Base64Encode(in.ca_pem)},
                  {"tls.crt", sdk::Base64Encode(in.certificate_pem)},
                  {"tls.key", sdk::Base64Encode(in.key_pem)}}}};
  return out;
}

}  // namespace airlock::isolators::kubernetes
