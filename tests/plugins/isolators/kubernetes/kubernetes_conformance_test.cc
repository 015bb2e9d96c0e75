// The isolator conformance kit (airlock/testing/isolator_conformance.hpp)
// against the kubernetes isolator, on the Kubernetes API server stand-in of
// fake_cluster.h (no real API server can run here): each enclave is a "pod"
// whose process the stand-in's kubelet starts from the pod's command, and
// which dials the isolator's link as a pod would. The pod settings the
// isolator reports (seccomp RuntimeDefault, read-only root, ...) are the
// cluster's to enforce; the kit names them as taken on trust.
#include "airlock/testing/isolator_conformance.hpp"
#include "tests/plugins/isolators/kubernetes/fake_cluster.h"

namespace {

using airlock::Result;
using airlock::conformance::IsolatorSetup;

class KubernetesFixture : public airlock::conformance::IsolatorFixture {
 public:
  Result<IsolatorSetup> Prepare() override {
    static airlock::test::FakeCluster fake;
    const airlock::test::FakeCluster* cluster = &fake;
    const std::string enclave = std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock-enclave";
    const nlohmann::json config = {
        {"cluster", cluster->ClusterConfig()},
        {"namespace", "airlock-conformance"},
        {"image", "registry.example/airlock-enclave:conformance"},
        {"enclave_command", {enclave}},
        {"kernel_id", "conformance"},
        {"link", {{"listen_address", "127.0.0.1"}, {"port", 0}, {"advertise_host", "127.0.0.1"}}},
        {"provision_timeout_ms", 20000}};
    return IsolatorSetup{std::string(AIRLOCK_PLUGIN_DIR) + "/airlock_isolator_kubernetes.so",
                         config.dump(), enclave};
  }
};

}  // namespace

AIRLOCK_ISOLATOR_CONFORMANCE_SUITE(Kubernetes, KubernetesFixture);
