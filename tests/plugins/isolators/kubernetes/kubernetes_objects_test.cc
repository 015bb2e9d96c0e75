// What the kubernetes isolator asks of the cluster, checked field by field
// without a cluster: the enclave's Pod, its NetworkPolicy and its link
// Secret; how a pod's status reads as a failure; the configuration's errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config.h"
#include "enclave_objects.h"
#include "pod_status.h"

namespace airlock::isolators::kubernetes {
namespace {

using nlohmann::json;

KubernetesConfig BaseConfig() {
  KubernetesConfig c;
  c.namespace_name = "airlock-enclaves";
  c.image = "registry.example/airlock-enclave:1.4";
  c.kernel_id = "airlockd-7d9f-x2";
  c.link_advertise_host = "10.1.2.3";
  c.link_port = 9444;
  c.kernel_peer.cidr = "10.1.2.3/32";
  c.secrets["PG_PASSWORD"] = {"pg-credentials", "password"};
  return c;
}

EnclaveInputs TwoSources() {
  EnclaveInputs in;
  in.request_id = "req_01HZX3";
  in.name = EnclaveName(in.request_id, "a1b2c3");
  in.memory_bytes = int64_t{512} << 20;
  in.active_deadline_seconds = 4500;
  in.egress = {{"10.9.0.7", 5432, {"10.9.0.7/32"}, false},
               {"mongo.data.svc", 27017, {"10.9.1.1/32", "10.9.1.2/32"}, true}};
  in.secret_env = {"PG_PASSWORD"};
  in.kernel_address = "10.1.2.3:9444";
  in.ca_pem = "CA PEM";
  in.certificate_pem = "CERT PEM";
  in.key_pem = "KEY PEM";
  return in;
}

TEST(KubernetesObjects, ThePodIsLockedDownAndDialsTheKernel) {
  const KubernetesConfig config = BaseConfig();
  const EnclaveInputs in = TwoSources();
  auto objects = BuildEnclaveObjects(config, in);
  ASSERT_TRUE(objects.ok()) << objects.status().message();
  const json& pod = objects->pod;
  EXPECT_EQ(pod["metadata"]["name"], "airlock-enclave-req-01hzx3-a1b2c3");
  EXPECT_EQ(pod["metadata"]["namespace"], "airlock-enclaves");
  EXPECT_EQ(pod["metadata"]["labels"]["airlock.dev/kernel"], "airlockd-7d9f-x2");
  EXPECT_EQ(pod["metadata"]["labels"]["airlock.dev/request"], "req-01hzx3");
  EXPECT_EQ(pod["metadata"]["labels"]["app.kubernetes.io/managed-by"], "airlock");
  EXPECT_EQ(pod["metadata"]["annotations"]["airlock.dev/request-id"], "req_01HZX3");
  EXPECT_EQ(pod["metadata"]["annotations"]["airlock.dev/owner"], "airlockd-7d9f-x2");
  const json& spec = pod["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  EXPECT_EQ(spec["enableServiceLinks"], false);
  EXPECT_EQ(spec["activeDeadlineSeconds"], 4500);
  EXPECT_FALSE(spec.contains("runtimeClassName"));
  EXPECT_EQ(spec["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  ASSERT_EQ(spec["containers"].size(), 1u);
  const json& c = spec["containers"][0];
  EXPECT_EQ(c["image"], "registry.example/airlock-enclave:1.4");
  EXPECT_EQ(c["command"], json({"/opt/airlock/bin/airlock-enclave", "--dial", "10.1.2.3:9444",
                                "--link-dir", "/var/run/airlock/link"}));
  EXPECT_EQ(c["securityContext"]["privileged"], false);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json({"ALL"}));
  const std::string memory = std::to_string((int64_t{512} << 20) + kPodMemoryOverheadBytes);
  EXPECT_EQ(c["resources"]["limits"]["memory"], memory);
  EXPECT_EQ(c["resources"]["requests"]["memory"], memory);
  // The connector's secret comes from the namespace's Secret, by reference.
  EXPECT_EQ(c["env"], json::parse(R"([{"name":"PG_PASSWORD","valueFrom":{"secretKeyRef":
      {"name":"pg-credentials","key":"password"}}}])"));
  EXPECT_EQ(spec["volumes"][0]["secret"]["secretName"], "airlock-enclave-req-01hzx3-a1b2c3-link");
  EXPECT_EQ(spec["volumes"][0]["secret"]["defaultMode"], 0440);
  EXPECT_EQ(spec["securityContext"]["fsGroup"], 65532)
      << "the enclave could not read its credential";
  EXPECT_EQ(c["volumeMounts"][0]["readOnly"], true);
  // Nothing else reaches the pod: its environment is the secret references only.
  EXPECT_EQ(c["env"].size(), 1u);
}

TEST(KubernetesObjects, ARuntimeClassAndNodeSelectorAreAppliedWhenConfigured) {
  KubernetesConfig config = BaseConfig();
  config.runtime_class = "gvisor";
  config.node_selector = {{"airlock.dev/pool", "enclaves"}};
  config.cpu = "500m";
  auto objects = BuildEnclaveObjects(config, TwoSources());
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->pod["spec"]["runtimeClassName"], "gvisor");
  EXPECT_EQ(objects->pod["spec"]["nodeSelector"]["airlock.dev/pool"], "enclaves");
  EXPECT_EQ(objects->pod["spec"]["containers"][0]["resources"]["limits"]["cpu"], "500m");
}

TEST(KubernetesObjects, TheNetworkPolicyOfATwoSourceRequestAllowsExactlyTheSourcesTheKernelAndDns) {
  auto objects = BuildEnclaveObjects(BaseConfig(), TwoSources());
  ASSERT_TRUE(objects.ok());
  const json& policy = objects->network_policy;
  EXPECT_EQ(policy["apiVersion"], "networking.k8s.io/v1");
  EXPECT_EQ(policy["kind"], "NetworkPolicy");
  EXPECT_EQ(policy["spec"]["podSelector"]["matchLabels"],
            json({{"airlock.dev/enclave", "airlock-enclave-req-01hzx3-a1b2c3"}}));
  EXPECT_EQ(policy["spec"]["policyTypes"], json({"Ingress", "Egress"}));
  EXPECT_EQ(policy["spec"]["ingress"], json::array()) << "no ingress at all";
  const json expected_egress = json::parse(R"([
    {"to":[{"ipBlock":{"cidr":"10.9.0.7/32"}}],"ports":[{"protocol":"TCP","port":5432}]},
    {"to":[{"ipBlock":{"cidr":"10.9.1.1/32"}},{"ipBlock":{"cidr":"10.9.1.2/32"}}],
     "ports":[{"protocol":"TCP","port":27017}]},
    {"to":[{"ipBlock":{"cidr":"10.1.2.3/32"}}],"ports":[{"protocol":"TCP","port":9444}]},
    {"to":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},
            "podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}}],
     "ports":[{"protocol":"UDP","port":53},{"protocol":"TCP","port":53}]}])");
  EXPECT_EQ(policy["spec"]["egress"], expected_egress) << policy["spec"]["egress"].dump(1);
}

TEST(KubernetesObjects, SourcesByAddressOnlyGetNoDns) {
  EnclaveInputs in = TwoSources();
  in.egress.pop_back();
  auto objects = BuildEnclaveObjects(BaseConfig(), in);
  ASSERT_TRUE(objects.ok());
  const json& egress = objects->network_policy["spec"]["egress"];
  ASSERT_EQ(egress.size(), 2u) << egress.dump();
  for (const auto& rule : egress) {
    for (const auto& port : rule["ports"]) EXPECT_NE(port["port"], 53) << egress.dump();
  }
}

TEST(KubernetesObjects, TheKernelCanBeAPodSelectorInsteadOfAnAddress) {
  KubernetesConfig config = BaseConfig();
  config.kernel_peer = {"", "airlock", {{"app.kubernetes.io/name", "airlockd"}}};
  auto objects = BuildEnclaveObjects(config, TwoSources());
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->network_policy["spec"]["egress"][2]["to"][0],
            json::parse(R"({"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":
                "airlock"}},"podSelector":{"matchLabels":{"app.kubernetes.io/name":"airlockd"}}})"));
}

TEST(KubernetesObjects, FilesAConnectorReadsAreMountedFromTheirKeysAndOthersRefused) {
  KubernetesConfig config = BaseConfig();
  config.mounts["/etc/airlock/pg-ca.crt"] = {"", "pg-ca", "ca.crt"};
  config.mounts["/etc/airlock/mongo.pem"] = {"mongo-client", "", "tls.pem"};
  EnclaveInputs in = TwoSources();
  in.read_paths = {"/etc/airlock/pg-ca.crt"};
  auto objects = BuildEnclaveObjects(config, in);
  ASSERT_TRUE(objects.ok()) << objects.status().message();
  const json& spec = objects->pod["spec"];
  EXPECT_EQ(spec["volumes"].size(), 3u) << "only the file asked for is mounted";
  EXPECT_EQ(spec["volumes"][2], json::parse(R"({"name":"file-0","configMap":{"name":"pg-ca",
      "items":[{"key":"ca.crt","path":"ca.crt"}]}})"));
  EXPECT_EQ(spec["containers"][0]["volumeMounts"][2],
            json::parse(R"({"name":"file-0","mountPath":"/etc/airlock/pg-ca.crt",
                "subPath":"ca.crt","readOnly":true})"));
  in.read_paths = {"/etc/airlock/mongo.pem"};
  objects = BuildEnclaveObjects(config, in);
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->pod["spec"]["volumes"][2]["secret"]["secretName"], "mongo-client");
  in.read_paths = {"/srv/data/orders.csv"};
  objects = BuildEnclaveObjects(config, in);
  ASSERT_FALSE(objects.ok());
  EXPECT_NE(objects.status().message().find("/srv/data/orders.csv"), std::string::npos);
  EXPECT_NE(objects.status().message().find("mounts"), std::string::npos);
}

TEST(KubernetesObjects, TheLinkSecretCarriesTheOneTimeCredentialEncoded) {
  auto objects = BuildEnclaveObjects(BaseConfig(), TwoSources());
  ASSERT_TRUE(objects.ok());
  const json& secret = objects->secret;
  EXPECT_EQ(secret["metadata"]["name"], "airlock-enclave-req-01hzx3-a1b2c3-link");
  EXPECT_EQ(secret["data"]["ca.crt"], "Q0EgUEVN");       // "CA PEM"
  EXPECT_EQ(secret["data"]["tls.crt"], "Q0VSVCBQRU0=");  // "CERT PEM"
  EXPECT_EQ(secret["data"]["tls.key"], "S0VZIFBFTQ==");  // "KEY PEM"
}

TEST(KubernetesObjects, AConnectorSecretWithoutAMappingIsAClearError) {
  EnclaveInputs in = TwoSources();
  in.secret_env.push_back("MONGO_PASSWORD");
  auto objects = BuildEnclaveObjects(BaseConfig(), in);
  ASSERT_FALSE(objects.ok());
  EXPECT_NE(objects.status().message().find("env:MONGO_PASSWORD"), std::string::npos);
  EXPECT_NE(objects.status().message().find("secrets"), std::string::npos);
}

TEST(KubernetesObjects, NamesAreValidKubernetesNamesWhateverTheRequestId) {
  for (const std::string& id :
       std::vector<std::string>{"r", "REQ--99__x", std::string(300, 'z'), "..--..", "ünïcode-1"}) {
    const std::string name = EnclaveName(id, "0f0f0f");
    EXPECT_LE(name.size(), 63u) << id;
    EXPECT_TRUE(IsDnsLabel(name)) << name;
    EXPECT_TRUE(IsLabelValue(RequestLabel(id))) << RequestLabel(id);
  }
}

json Pod(const std::string& status) {
  return {{"status", json::parse(status)}};
}

TEST(KubernetesPodStatus, FailuresReadAsKubernetesSaysThem) {
  auto backoff = StartFailure(Pod(R"({"phase":"Pending","containerStatuses":[{"state":{"waiting":
      {"reason":"ImagePullBackOff","message":"Back-off pulling image \"x:1\""}}}]})"));
  ASSERT_TRUE(backoff.has_value());
  EXPECT_EQ(*backoff, "ImagePullBackOff: Back-off pulling image \"x:1\"");
  auto unschedulable = StartFailure(Pod(R"({"phase":"Pending","conditions":[{"type":
      "PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes"}]})"));
  ASSERT_TRUE(unschedulable.has_value());
  EXPECT_EQ(*unschedulable, "Unschedulable: 0/3 nodes");
  auto oom = StartFailure(Pod(R"({"phase":"Failed","containerStatuses":[{"state":{"terminated":
      {"reason":"OOMKilled","exitCode":137}}}]})"));
  ASSERT_TRUE(oom.has_value());
  EXPECT_EQ(*oom, "OOMKilled: exit code 137");
  auto deadline = StartFailure(
      Pod(R"({"phase":"Failed","reason":"DeadlineExceeded","message":"Pod was active too long"})"));
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(*deadline, "DeadlineExceeded: Pod was active too long");
}

TEST(KubernetesPodStatus, TransientStatesAreNotFailures) {
  EXPECT_FALSE(StartFailure(Pod(R"({"phase":"Pending"})")));
  EXPECT_FALSE(StartFailure(Pod(R"({"phase":"Pending","containerStatuses":[{"state":{"waiting":
      {"reason":"ContainerCreating"}}}]})")));
  EXPECT_FALSE(StartFailure(Pod(R"({"phase":"Pending","containerStatuses":[{"state":{"waiting":
      {"reason":"ErrImagePull","message":"retrying"}}}]})")))
      << "Kubernetes retries a first pull error";
  EXPECT_FALSE(StartFailure(Pod(R"({"phase":"Running","containerStatuses":[{"state":{"running":
      {"startedAt":"2026-12-07T00:00:00Z"}}}]})")));
  EXPECT_FALSE(StartFailure(json::object()));
  EXPECT_FALSE(StartFailure(json("not a pod")));
}

json ValidConfig() {
  return {{"cluster",
           {{"server", "https://10.0.0.1:6443"},
            {"ca_file", "/etc/ca.crt"},
            {"token_file", "/var/run/token"}}},
          {"namespace", "airlock-enclaves"},
          {"image", "registry.example/airlock-enclave:1.4"},
          {"kernel_id", "kernel-a"},
          {"link", {{"advertise_host", "10.1.2.3"}}}};
}

TEST(KubernetesConfig, DefaultsComeFromThePodsEnvironment) {
  json config = ValidConfig();
  config.erase("kernel_id");
  config["link"].erase("advertise_host");
  config["cluster"] = {{"in_cluster", true}};
  auto parsed = ParseConfig(config, sdk::Host(),
                            {{"HOSTNAME", "airlockd-5f7c9-qwz"},
                             {"POD_IP", "10.4.0.9"},
                             {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                             {"KUBERNETES_SERVICE_PORT", "443"}});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->kernel_id, "airlockd-5f7c9-qwz");
  EXPECT_EQ(parsed->link_advertise_host, "10.4.0.9");
  EXPECT_EQ(parsed->kernel_peer.cidr, "10.4.0.9/32");
  EXPECT_EQ(parsed->cluster.server, "https://10.96.0.1:443");
  EXPECT_EQ(parsed->cluster.token_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
  EXPECT_EQ(parsed->cluster.ca_file, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
}

TEST(KubernetesConfig, MistakesAreNamed) {
  struct Case {
    std::function<void(json&)> change;
    std::string says;
  };
  const std::vector<Case> cases = {
      {[](json& c) { c["nmespace"] = "x"; }, "unknown key 'nmespace'"},
      {[](json& c) { c.erase("image"); }, "image"},
      {[](json& c) { c["namespace"] = "Not_A_Namespace"; }, "namespace"},
      {[](json& c) {
         c["cluster"] = {{"in_cluster", true}};
       },
       "KUBERNETES_SERVICE_HOST"},
      {[](json& c) { c["cluster"]["server"] = "http://10.0.0.1"; }, "https://"},
      {[](json& c) { c["cluster"]["token"] = "env:KUBE_TOKEN"; }, "exactly one of"},
      {[](json& c) {
         c["cluster"]["token_file"] = nullptr;
         c["cluster"]["token"] = "raw";
       },
       "token"},
      {[](json& c) { c["link"]["advertise_host"] = "kernel.airlock.svc"; }, "kernel_cidr"},
      {[](json& c) { c["min_isolation"] = {"runtime_class"}; }, "runtime_class"},
      {[](json& c) { c["min_isolation"] = {"pid_namespace"}; }, "unknown mechanism"},
      {[](json& c) {
         c["secrets"] = {{"PG", {{"secret", "s"}}}};
       },
       "key"},
      {[](json& c) { c["kernel_id"] = "has space"; }, "kernel_id"},
      {[](json& c) { c["image_pull_policy"] = "Sometimes"; }, "image_pull_policy"},
      {[](json& c) {
         c["mounts"] = {{"relative/ca.crt", {{"secret", "s"}, {"key", "k"}}}};
       },
       "absolute"},
      {[](json& c) {
         c["mounts"] = {{"/etc/ca.crt", {{"secret", "s"}, {"config_map", "m"}, {"key", "k"}}}};
       },
       "exactly one of secret and config_map"},
  };
  for (const auto& c : cases) {
    json config = ValidConfig();
    c.change(config);
    auto parsed = ParseConfig(config, sdk::Host(), {});
    ASSERT_FALSE(parsed.ok()) << config.dump();
    EXPECT_NE(parsed.status().message().find(c.says), std::string::npos)
        << parsed.status().message();
  }
  EXPECT_TRUE(ParseConfig(ValidConfig(), sdk::Host(), {}).ok());
}

}  // namespace
}  // namespace airlock::isolators::kubernetes
