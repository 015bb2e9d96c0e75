// The kubernetes isolator's configuration (docs/kubernetes.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::isolators::kubernetes {

// How the isolator reaches the API server.
// Secrets among them (an inline token, a client key) are wiped by the
// client that takes them (KubeClient::Create).
struct ClusterAccess {
  std::string server;                   // https://host:port
  std::string ca_file;                  // the cluster's CA bundle (PEM), or:
  std::string ca_pem;                   //   inline (a kubeconfig's certificate-authority-data)
  std::string token_file;               // re-read on every call: projected tokens rotate
  std::string token_reference;          // or a secret reference (env:/file:), resolved once
  std::string token;                    // or inline (a kubeconfig user's token)
  std::string client_certificate_file;  // or a client certificate (file or PEM)
  std::string client_key_file;
  std::string client_certificate_pem;
  std::string client_key_pem;
};

// A Kubernetes Secret key a connector's env: reference is filled from.
struct SecretKeyRef {
  std::string secret;
  std::string key;
};

// A file a connector reads (a CA bundle, say), mounted into the pod from a
// Secret or a ConfigMap key at the path the connector's configuration names.
struct FileMount {
  std::string secret;  // or:
  std::string config_map;
  std::string key;
};

// Where the kernel is, as a NetworkPolicy peer for the enclave's egress.
struct KernelPeer {
  std::string cidr;  // or:
  std::string namespace_name;
  std::map<std::string, std::string> pod_labels;
};

struct KubernetesConfig {
  ClusterAccess cluster;
  std::string namespace_name;
  std::string image;
  std::string image_pull_policy;  // empty: the cluster's default
  std::vector<std::string> enclave_command = {"/opt/airlock/bin/airlock-enclave"};
  std::string runtime_class;  // empty: the cluster's default runtime
  std::map<std::string, std::string> node_selector;
  std::string cpu;  // requests and limits, Kubernetes quantity; empty: none
  std::string kernel_id;
  // The enclave link: where the isolator listens and what enclaves dial.
  std::string link_listen_address = "0.0.0.0";
  uint16_t link_port = 9444;
  std::string link_advertise_host;
  KernelPeer kernel_peer;
  // DNS servers' pods, allowed to enclaves whose sources are named by host.
  std::string dns_namespace = "kube-system";
  std::map<std::string, std::string> dns_pod_labels = {{"k8s-app", "kube-dns"}};
  std::map<std::string, SecretKeyRef> secrets;  // env name -> Secret key
  std::map<std::string, FileMount> mounts;      // absolute path -> source
  // Directories the enclave image itself holds (the connector plugins): a
  // file under one needs no mount.
  std::vector<std::string> image_paths = {"/opt/airlock/"};
  std::chrono::milliseconds provision_timeout{120000};
  int64_t deadline_slack_seconds = 900;
  std::set<std::string> min_isolation;
};

// Mechanisms min_isolation may name.
inline constexpr const char* kMechanismNames[] = {
    "pod", "network_policy", "seccomp", "read_only_root", "non_root", "runtime_class"};

// `environment` looks up variables the defaults come from (HOSTNAME for
// kernel_id, POD_IP for the link's advertised host).
Result<KubernetesConfig> ParseConfig(const Json& config, const sdk::Host& host,
                                     const std::map<std::string, std::string>& environment);

// A valid Kubernetes label value: at most 63 of [A-Za-z0-9._-], alphanumeric
// at both ends (or empty).
bool IsLabelValue(const std::string& value);
// A valid DNS-1123 label (names of namespaces, pods' name parts).
bool IsDnsLabel(const std::string& value);

}  // namespace airlock::isolators::kubernetes
