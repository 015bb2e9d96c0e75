// The kubernetes isolator: each enclave is a Pod in the configured
// namespace, with its own NetworkPolicy (egress only to the approved
// sources and the kernel's link) and a one-time link credential in a
// Secret. The enclave dials the kernel's enclave link over mutual TLS; its
// bytes reach the host through a local socket pair. Pods are watched while
// they start so that a failure carries Kubernetes' own reason
// (ImagePullBackOff, Unschedulable, OOMKilled, ...). docs/kubernetes.md.
//
// Thread-safety: every public method may be called concurrently.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"
#include "enclave_objects.h"
#include "kube_client.h"
#include "link_listener.h"

namespace airlock::isolators::kubernetes {

class KubernetesIsolator : public sdk::Isolator {
 public:
  static Result<std::unique_ptr<KubernetesIsolator>> Create(const Json& config,
                                                            const sdk::Host& host);
  ~KubernetesIsolator() override;

  Result<sdk::EnclaveLaunch> Provision(const Json& spec) override;
  Status Terminate(sdk::Enclave& enclave) override;
  Json DescribeIsolation() override;
  // Deletes every pod and policy this kernel (kernel_id) left,
  // and any finished enclave pod of any kernel.
  Status ReapOrphans() override;

 private:
  KubernetesIsolator(KubernetesConfig config, sdk::Host host, std::unique_ptr<KubeClient> client,
                     std::unique_ptr<LinkListener> link);

  // Waits for the pod to dial in, watching its status meanwhile. Ok once
  // connected; otherwise why not, in Kubernetes' words.
  Status AwaitEnclave(const std::string& pod_name, const std::string& resource_version,
                      PendingLink& link);
  // Deletes the enclave's objects; NotFound counts as deleted.
  Status DeleteObjects(const std::string& pod_name, bool pod_too);
  std::string Path(const std::string& resource) const;

  KubernetesConfig config_;
  sdk::Host host_;
  std::unique_ptr<KubeClient> client_;
  std::unique_ptr<LinkListener> link_;
  std::mutex mutex_;
  std::set<std::string> live_pods_;  // GUARDED_BY(mutex_)
};

}  // namespace airlock::isolators::kubernetes
