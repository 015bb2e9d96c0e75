// The Kubernetes objects of one enclave, built from the isolator's
// configuration and the host's enclave spec: the Pod, the NetworkPolicy
// that lets it reach only the approved sources and the kernel's link, and
// the Secret that carries its one-time link credential. Pure functions: what
// is sent to the API server is decided here and tested field by field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"

namespace airlock::isolators::kubernetes {

// One approved source as a NetworkPolicy peer.
struct EgressPeer {
  std::string host;  // as the connector dials it
  uint16_t port = 0;
  std::vector<std::string> cidrs;  // the addresses it resolved to, /32 or /128
  bool named = false;              // a host name: the pod needs DNS
};

struct EnclaveInputs {
  std::string request_id;
  std::string name;  // the pod's name; the policy's and the Secret's derive from it
  int64_t memory_bytes = 0;
  int64_t active_deadline_seconds = 0;
  std::vector<EgressPeer> egress;
  std::vector<std::string> secret_env;  // env names the connectors' references use
  std::vector<std::string> read_paths;  // files the connectors read (config `mounts`)
  std::string kernel_address;           // host:port the enclave dials
  std::string ca_pem;
  std::string certificate_pem;
  std::string_view key_pem;
};

struct EnclaveObjects {
  Json pod;
  Json network_policy;
  Json secret;
};

// Where the link credential is mounted inside the pod.
inline constexpr const char* kLinkMountPath = "/var/run/airlock/link";
// Memory the enclave process needs beyond its data budget.
inline constexpr int64_t kPodMemoryOverheadBytes = int64_t{128} << 20;

// Labels every object of the enclave carries (the policy selects the pod by
// airlock.dev/enclave; reconciliation lists by airlock.dev/kernel).
Json EnclaveLabels(const KubernetesConfig& config, const EnclaveInputs& in);

// FailedPrecondition when a secret_env name has no `secrets` entry or a
// read path no `mounts` entry. The
// Secret belongs to the Pod once created (SetOwner), so Kubernetes deletes
// it with the pod whoever deletes the pod.
Result<EnclaveObjects> BuildEnclaveObjects(const KubernetesConfig& config, const EnclaveInputs& in);

// A pod name for `request_id`: "airlock-enclave-<id, DNS-safe>-<suffix>",
// at most 63 characters.
std::string EnclaveName(const std::string& request_id, const std::string& suffix);
// The request id as a label value (DNS-safe, at most 63 characters).
std::string RequestLabel(const std::string& request_id);

// Makes `object` owned by the pod (an ownerReference with its uid).
void SetOwner(Json& object, const std::string& pod_name, const std::string& pod_uid);

std::string PolicyName(const std::string& pod_name);
std::string LinkSecretName(const std::string& pod_name);

}  // namespace airlock::isolators::kubernetes
