// The kubernetes isolator against a Kubernetes API server stand-in (see
// fake_cluster.h: no real API server can run here; the stand-in speaks the
// real REST protocol and runs each pod's command as a local process). Real
// TLS to the API server, a real airlock-enclave dialing the isolator's link
// over mutual TLS from a "pod".
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <nlohmann/json.hpp>

#include "airlock/cpp/base64url.hpp"
#include "kubernetes.h"
#include "tests/plugins/isolators/kubernetes/fake_cluster.h"

namespace airlock::isolators::kubernetes {
namespace {

using nlohmann::json;
using test::FakeCluster;
using test::FakeClusterOptions;

constexpr const char* kNamespace = "airlock-enclaves";

std::string EnclaveExecutable() {
  return std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock-enclave";
}

json Config(const FakeCluster& cluster) {
  return {{"cluster", cluster.ClusterConfig()},
          {"namespace", kNamespace},
          {"image", "registry.example/airlock-enclave:test"},
          {"enclave_command", {EnclaveExecutable()}},
          {"kernel_id", "kernel-under-test"},
          {"link", {{"listen_address", "127.0.0.1"}, {"port", 0}, {"advertise_host", "127.0.0.1"}}},
          {"provision_timeout_ms", 20000}};
}

json Spec(const std::string& id) {
  return {{"request_id", id},
          {"limits", {{"memory_bytes", 256 << 20}, {"query_timeout_ms", 30000}}},
          {"egress", json::array()},
          {"max_window_seconds", 3600}};
}

std::unique_ptr<KubernetesIsolator> Make(const json& config) {
  auto made = KubernetesIsolator::Create(config, sdk::Host());
  EXPECT_TRUE(made.ok()) << made.status().message();
  return made.ok() ? std::move(made).value() : nullptr;
}

// True when `fd` reads end of file within `timeout`.
bool ReadsEof(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::vector<json> RequestsTo(const FakeCluster& cluster, const std::string& method,
                             const std::string& path_part) {
  std::vector<json> out;
  for (const auto& r : cluster.Requests()) {
    if (r.value("method", "") == method &&
        r.value("path", "").find(path_part) != std::string::npos) {
      out.push_back(r);
    }
  }
  return out;
}

TEST(KubernetesIsolator, AnEnclavePodDialsInAndTerminateRemovesEverything) {
  FakeCluster cluster;
  auto isolator = Make(Config(cluster));
  ASSERT_NE(isolator, nullptr);
  auto launched = isolator->Provision(Spec("req-lifecycle"));
  ASSERT_TRUE(launched.ok()) << launched.status().message();
  ASSERT_GE(launched->control_fd, 0);

  // Created in this order: the policy before the pod, so the pod never runs
  // without it, then the link Secret owned by the pod; the Secret went as
  // soon as the enclave dialed in.
  std::vector<std::string> created;
  for (const auto& r : cluster.Requests()) {
    if (r.value("method", "") == "POST") created.push_back(r.value("path", ""));
  }
  ASSERT_EQ(created.size(), 3u);
  EXPECT_NE(created[0].find("/networkpolicies"), std::string::npos);
  EXPECT_NE(created[1].find("/pods"), std::string::npos);
  EXPECT_NE(created[2].find("/secrets"), std::string::npos);
  const auto secret_posts = RequestsTo(cluster, "POST", "/secrets");
  ASSERT_EQ(secret_posts.size(), 1u);
  const json owner = secret_posts[0]["body"]["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "Pod");
  EXPECT_EQ(owner["name"], RequestsTo(cluster, "POST", "/pods")[0]["body"]["metadata"]["name"]);
  EXPECT_FALSE(owner.value("uid", "").empty());
  const auto pods = cluster.Names("pods", kNamespace);
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].rfind("airlock-enclave-req-lifecycle-", 0), 0u) << pods[0];
  EXPECT_EQ(cluster.Names("networkpolicies", kNamespace).size(), 1u);
  EXPECT_TRUE(cluster.Names("secrets", kNamespace).empty())
      << "the one-time link credential outlived its use";
  EXPECT_FALSE(ReadsEof(launched->control_fd, std::chrono::milliseconds(200)))
      << "the channel to the pod closed on its own";

  ASSERT_TRUE(isolator->Terminate(*launched->enclave).ok());
  EXPECT_TRUE(ReadsEof(launched->control_fd, std::chrono::seconds(10)))
      << "the control channel stayed open after terminate";
  EXPECT_TRUE(cluster.Names("pods", kNamespace).empty());
  EXPECT_TRUE(cluster.Names("networkpolicies", kNamespace).empty());
  ::close(launched->control_fd);
}

TEST(KubernetesIsolator, ALinkCertificateWorksOnceAndNoOtherCertificateWorksAtAll) {
  FakeCluster cluster;
  json config = Config(cluster);
  auto isolator = Make(config);
  ASSERT_NE(isolator, nullptr);
  auto launched = isolator->Provision(Spec("req-link"));
  ASSERT_TRUE(launched.ok()) << launched.status().message();
  const std::string pod = cluster.Names("pods", kNamespace).at(0);
  const std::string link_dir = cluster.dir() + "/kubelet/pods/" + kNamespace + "/" + pod + "/link";
  // The pod's command names the port it dialed.
  const auto pod_posts = RequestsTo(cluster, "POST", "/pods");
  ASSERT_EQ(pod_posts.size(), 1u);
  const json command = pod_posts[0]["body"]["spec"]["containers"][0]["command"];
  const std::string address = command[2].get<std::string>();
  const std::string port = address.substr(address.rfind(':') + 1);

  // Dials the link as an enclave would; true when the link keeps the
  // connection open after the handshake (it closes refused ones at once).
  auto accepted = [&](const std::string& cert, const std::string& key) {
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.load_verify_file(link_dir + "/ca.crt");
    tls.use_certificate_chain_file(cert);
    tls.use_private_key_file(key, asio::ssl::context::pem);
    tls.set_verify_mode(asio::ssl::verify_peer);
    asio::ssl::stream<asio::ip::tcp::socket> stream(io, tls);
    asio::ip::tcp::resolver resolver(io);
    asio::connect(stream.lowest_layer(), resolver.resolve("127.0.0.1", port));
    boost::system::error_code ec;
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return false;
    // TLS 1.3: a refused client certificate shows on the first read.
    timeval tv{1, 0};
    ::setsockopt(stream.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    stream.read_some(asio::buffer(&byte, 1), ec);
    return ec == asio::error::would_block || ec == asio::error::try_again;
  };
  // The enclave's own certificate, already used: refused.
  EXPECT_FALSE(accepted(link_dir + "/tls.crt", link_dir + "/tls.key"));
  // A certificate from another authority: refused.
  FakeCluster other;  // only for its test PKI
  const std::string foreign = other.dir();
  EXPECT_FALSE(accepted(foreign + "/client.crt", foreign + "/client.key"));
  // And the enclave's own link is untouched by either attempt.
  EXPECT_FALSE(ReadsEof(launched->control_fd, std::chrono::milliseconds(300)))
      << "a refused connection broke the live link";

  ASSERT_TRUE(isolator->Terminate(*launched->enclave).ok());
  ::close(launched->control_fd);
}

TEST(KubernetesIsolator, AnImageThatCannotBePulledFailsWithKubernetesReasonAndLeavesNothing) {
  FakeCluster cluster;
  json config = Config(cluster);
  config["image"] = "registry.example/pull-fails:1";
  auto isolator = Make(config);
  ASSERT_NE(isolator, nullptr);
  auto launched = isolator->Provision(Spec("req-pull"));
  ASSERT_FALSE(launched.ok());
  EXPECT_EQ(launched.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(launched.status().message().find("ImagePullBackOff: Back-off pulling image"),
            std::string::npos)
      << launched.status().message();
  EXPECT_TRUE(cluster.Names("pods", kNamespace).empty());
  EXPECT_TRUE(cluster.Names("networkpolicies", kNamespace).empty());
  EXPECT_TRUE(cluster.Names("secrets", kNamespace).empty());
}

TEST(KubernetesIsolator, AnUnschedulablePodFailsWithTheSchedulersMessage) {
  FakeCluster cluster;
  json config = Config(cluster);
  config["node_selector"] = {{"airlock.test/unschedulable", "yes"}};
  auto isolator = Make(config);
  ASSERT_NE(isolator, nullptr);
  auto launched = isolator->Provision(Spec("req-unschedulable"));
  ASSERT_FALSE(launched.ok());
  EXPECT_NE(launched.status().message().find("Unschedulable: 0/3 nodes are available"),
            std::string::npos)
      << launched.status().message();
  EXPECT_TRUE(cluster.Names("pods", kNamespace).empty());
}

TEST(KubernetesIsolator, AnEnclaveKilledForMemoryBeforeItDialsSaysOOMKilled) {
  FakeCluster cluster;
  json config = Config(cluster);
  config["image"] = "registry.example/oom-killed:1";
  auto isolator = Make(config);
  ASSERT_NE(isolator, nullptr);
  auto launched = isolator->Provision(Spec("req-oom"));
  ASSERT_FALSE(launched.ok());
  EXPECT_NE(launched.status().message().find("OOMKilled"), std::string::npos)
      << launched.status().message();
}

TEST(KubernetesIsolator, TheWatchResumesAfter410GoneAndStillSeesTheFailure) {
  FakeCluster cluster;
  json config = Config(cluster);
  // A pod that takes its time before it would dial.
  config["enclave_command"] = {"/bin/sh", "-c", "sleep 30", "sh"};
  auto isolator = Make(config);
  ASSERT_NE(isolator, nullptr);
  auto provisioning =
      std::async(std::launch::async, [&] { return isolator->Provision(Spec("req-410")); });
  // Wait for the first watch, then compact: it ends with 410 Gone.
  auto watches = [&] {
    size_t n = 0;
    for (const auto& r : RequestsTo(cluster, "GET", "/pods")) {
      if (r["query"].value("watch", "") != "") ++n;
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (watches() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(watches(), 1u);
  cluster.Compact();
  // Only a watch that resumed can see what happens next.
  while (watches() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(watches(), 2u) << "no new watch after 410 Gone";
  const std::string pod = cluster.Names("pods", kNamespace).at(0);
  cluster.SetPodStatus(
      kNamespace, pod,
      json::parse(R"({"phase":"Pending","containerStatuses":[{"name":"enclave","state":{"waiting":
         {"reason":"CreateContainerConfigError","message":"secret \"pg-credentials\" not found"}}}]})"));
  auto launched = provisioning.get();
  ASSERT_FALSE(launched.ok());
  EXPECT_NE(launched.status().message().find(
                "CreateContainerConfigError: secret \"pg-credentials\" not found"),
            std::string::npos)
      << launched.status().message();
  // After the 410 it read the pod afresh before watching again.
  bool reread = false;
  for (const auto& r : RequestsTo(cluster, "GET", "/pods/" + pod))
    reread = reread || r["status"] == 200;
  EXPECT_TRUE(reread);
}

TEST(KubernetesIsolator, ARestartedKernelRemovesWhatItsPredecessorLeftAndNothingElse) {
  FakeCluster cluster;
  auto pod = [&](const std::string& name, const std::string& kernel,
                 const std::vector<std::string>& command) {
    json labels = {{"app.kubernetes.io/managed-by", "airlock"},
                   {"app.kubernetes.io/name", "airlock-enclave"},
                   {"airlock.dev/kernel", kernel},
                   {"airlock.dev/enclave", name}};
    auto created = cluster.Api(
        "POST", std::string("/api/v1/namespaces/") + kNamespace + "/pods",
        {{"apiVersion", "v1"},
         {"kind", "Pod"},
         {"metadata", {{"name", name}, {"labels", labels}}},
         {"spec",
          {{"restartPolicy", "Never"},
           {"containers", {{{"name", "enclave"}, {"image", "x"}, {"command", command}}}}}}});
    ASSERT_EQ(created.first, 201u) << created.second.dump();
    auto policy = cluster.Api(
        "POST",
        std::string("/apis/networking.k8s.io/v1/namespaces/") + kNamespace + "/networkpolicies",
        {{"apiVersion", "networking.k8s.io/v1"},
         {"kind", "NetworkPolicy"},
         {"metadata", {{"name", name}, {"labels", labels}}},
         {"spec", {{"podSelector", {{"matchLabels", {{"airlock.dev/enclave", name}}}}}}}});
    ASSERT_EQ(policy.first, 201u) << policy.second.dump();
  };
  pod("orphan-of-mine", "kernel-under-test", {"/bin/sleep", "60"});
  pod("live-of-another-kernel", "kernel-b", {"/bin/sleep", "60"});
  pod("finished-of-a-lost-kernel", "kernel-c", {"/bin/false"});
  // Let the stand-in's kubelet run them (and the last one fail).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto phase_of = [&](const std::string& name) {
    auto got =
        cluster.Api("GET", std::string("/api/v1/namespaces/") + kNamespace + "/pods/" + name);
    return got.second["status"].value("phase", "");
  };
  while (phase_of("finished-of-a-lost-kernel") != "Failed" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(phase_of("finished-of-a-lost-kernel"), "Failed");

  auto isolator = Make(Config(cluster));
  ASSERT_NE(isolator, nullptr);
  ASSERT_TRUE(isolator->ReapOrphans().ok());
  EXPECT_EQ(cluster.Names("pods", kNamespace), std::vector<std::string>{"live-of-another-kernel"});
  EXPECT_EQ(cluster.Names("networkpolicies", kNamespace),
            std::vector<std::string>{"live-of-another-kernel"});
}

TEST(KubernetesIsolator, AMissingPermissionIsAClearErrorNamingIt) {
  FakeClusterOptions options;
  options.forbid = {"create:networkpolicies"};
  FakeCluster cluster(options);
  auto isolator = Make(Config(cluster));
  ASSERT_NE(isolator, nullptr);
  auto launched = isolator->Provision(Spec("req-rbac"));
  ASSERT_FALSE(launched.ok());
  EXPECT_EQ(launched.status().code(), StatusCode::kPermissionDenied);
  const std::string message = launched.status().message();
  EXPECT_NE(message.find("cannot create resource \"networkpolicies\""), std::string::npos)
      << message;
  EXPECT_NE(message.find("Role"), std::string::npos) << message;
  EXPECT_TRUE(cluster.Names("pods", kNamespace).empty()) << "a pod ran without its policy";
}

TEST(KubernetesIsolator, AWrongTokenIsRefusedAtTheFirstCall) {
  FakeCluster cluster;
  json config = Config(cluster);
  const std::string wrong = cluster.dir() + "/wrong-token";
  std::ofstream(wrong) << "not-the-token\n";
  config["cluster"]["token_file"] = wrong;
  auto isolator = Make(config);
  ASSERT_NE(isolator, nullptr);
  auto launched = isolator->Provision(Spec("req-token"));
  ASSERT_FALSE(launched.ok());
  EXPECT_EQ(launched.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(launched.status().message().find("not-the-token"), std::string::npos);
}

// A kubeconfig as kubectl writes it, with three contexts: the stand-in
// through an inline CA and token, the stand-in through a token file next
// to the kubeconfig, and one whose user runs an exec credential plugin.
std::string WriteKubeconfig(const FakeCluster& cluster, const std::string& current,
                            bool skip_verify = false) {
  std::ifstream ca(cluster.ca_file());
  const std::string ca_pem((std::istreambuf_iterator<char>(ca)), std::istreambuf_iterator<char>());
  const std::string path = cluster.dir() + "/kube/config";
  std::filesystem::create_directories(cluster.dir() + "/kube");
  std::ofstream(cluster.dir() + "/kube/sa.token") << cluster.token() << "\n";
  std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: " << current << "\n"
                      << "clusters:\n- name: stand-in\n  cluster:\n    server: " << cluster.server()
                      << "\n    certificate-authority-data: " << sdk::Base64Encode(ca_pem) << "\n"
                      << (skip_verify ? "    insecure-skip-tls-verify: true\n" : "")
                      << "users:\n- name: robot\n  user:\n    token: " << cluster.token() << "\n"
                      << "- name: robot-file\n  user:\n    tokenFile: sa.token\n"
                      << "- name: human\n  user:\n    exec:\n      apiVersion: "
                         "client.authentication.k8s.io/v1\n      command: gke-gcloud-auth-plugin\n"
                      << "contexts:\n- name: robot@stand-in\n  context:\n    cluster: stand-in\n"
                         "    user: robot\n"
                      << "- name: file@stand-in\n  context:\n    cluster: stand-in\n"
                         "    user: robot-file\n"
                      << "- name: human@stand-in\n  context:\n    cluster: stand-in\n"
                         "    user: human\n";
  return path;
}

TEST(KubernetesIsolator, AKubeconfigContextReachesTheClusterAsItsUser) {
  FakeCluster cluster;
  for (const std::string context : {"robot@stand-in", "file@stand-in"}) {
    SCOPED_TRACE(context);
    json config = Config(cluster);
    config["cluster"] = {{"kubeconfig", WriteKubeconfig(cluster, "human@stand-in")},
                         {"context", context}};
    auto isolator = Make(config);
    ASSERT_NE(isolator, nullptr);
    // Listing answers 200 only to the service account's token over the
    // verified TLS connection.
    EXPECT_TRUE(isolator->ReapOrphans().ok());
  }
  size_t authorized = 0;
  for (const auto& r : cluster.Requests()) authorized += r.value("status", 0) == 200;
  EXPECT_GE(authorized, 4u);

  // The current context's user runs an exec plugin: refused by name.
  json config = Config(cluster);
  config["cluster"] = {{"kubeconfig", WriteKubeconfig(cluster, "human@stand-in")}};
  auto refused = KubernetesIsolator::Create(config, sdk::Host());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("exec"), std::string::npos)
      << refused.status().message();
  // Skipping TLS verification is never accepted.
  config["cluster"] = {{"kubeconfig", WriteKubeconfig(cluster, "robot@stand-in", true)}};
  refused = KubernetesIsolator::Create(config, sdk::Host());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("verif"), std::string::npos);
  // Neither is a context the file does not have, nor a file that is not YAML.
  config["cluster"] = {{"kubeconfig", WriteKubeconfig(cluster, "robot@stand-in")},
                       {"context", "nobody@nowhere"}};
  refused = KubernetesIsolator::Create(config, sdk::Host());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("nobody@nowhere"), std::string::npos);
  std::ofstream(cluster.dir() + "/kube/broken") << "clusters: [\n  - {name: x, token: secret-tok";
  config["cluster"] = {{"kubeconfig", cluster.dir() + "/kube/broken"}};
  refused = KubernetesIsolator::Create(config, sdk::Host());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().find("secret-tok"), std::string::npos)
      << "a kubeconfig's content must not reach an error";
}

TEST(KubernetesIsolator, HostFilesWithoutAMountAreRefusedBecauseAPodCannotSeeThem) {
  FakeCluster cluster;
  auto isolator = Make(Config(cluster));
  ASSERT_NE(isolator, nullptr);
  json spec = Spec("req-files");
  spec["read_paths"] = {"/srv/data"};
  auto launched = isolator->Provision(spec);
  ASSERT_FALSE(launched.ok());
  EXPECT_EQ(launched.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(RequestsTo(cluster, "POST", "/").empty());
}

}  // namespace
}  // namespace airlock::isolators::kubernetes
