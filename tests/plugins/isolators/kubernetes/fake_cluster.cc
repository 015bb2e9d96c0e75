#include "tests/plugins/isolators/kubernetes/fake_cluster.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "tests/support/http_client.h"

namespace airlock::test {

FakeCluster::FakeCluster(const FakeClusterOptions& options)
    : dir_("airlock-fake-kube-"), pki_(GenerateTestPki(dir_.path())) {
  token_ = "kube-sa-token-" + std::to_string(::getpid()) + "-e1f0";
  token_file_ = dir_.path() + "/token";
  std::ofstream(token_file_) << token_ << "\n";
  std::vector<std::string> argv = {
      "/usr/bin/python3",
      std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/kube/fake_kube_apiserver.py",
      "--cert",
      pki_.server.cert_file,
      "--key",
      pki_.server.key_file,
      "--token-file",
      token_file_,
      "--work-dir",
      dir_.path() + "/kubelet"};
  // Pods run the sanitized airlock-enclave of this build: same options.
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "ASAN_SYMBOLIZER_PATH"}) {
    if (const char* value = std::getenv(name)) {
      argv.push_back("--enclave-env");
      argv.push_back(std::string(name) + "=" + value);
    }
  }
  for (const auto& f : options.forbid) {
    argv.push_back("--forbid");
    argv.push_back(f);
  }
  server_ = std::make_unique<ChildProcess>(argv, std::chrono::seconds(20));
  port_ = static_cast<uint16_t>(std::stoi(server_->ready_line()));
}

FakeCluster::~FakeCluster() {
  server_->Stop();
}

nlohmann::json FakeCluster::ClusterConfig() const {
  return {{"server", server()}, {"ca_file", ca_file()}, {"token_file", token_file_}};
}

std::pair<unsigned, nlohmann::json> FakeCluster::Api(const std::string& method,
                                                     const std::string& target,
                                                     const nlohmann::json& body) const {
  HttpClient client("127.0.0.1", port_, ClientTls{pki_.ca.cert_file, "", ""});
  Headers headers = {{"Authorization", "Bearer " + token_}};
  auto reply = client.Request(method, target, body.is_null() ? "" : body.dump(), headers);
  auto parsed = nlohmann::json::parse(reply.body, nullptr, false);
  return {reply.status, parsed.is_discarded() ? nlohmann::json() : parsed};
}

nlohmann::json FakeCluster::Control(const std::string& method, const std::string& target) const {
  HttpClient client("127.0.0.1", port_, ClientTls{pki_.ca.cert_file, "", ""});
  auto reply = client.Request(method, target, method == "POST" ? "{}" : "");
  if (reply.status != 200) throw std::runtime_error("fake cluster " + target + ": " + reply.body);
  auto parsed = nlohmann::json::parse(reply.body, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json(reply.body) : parsed;
}

nlohmann::json FakeCluster::Requests() const {
  return Control("GET", "/_test/requests");
}
nlohmann::json FakeCluster::Objects() const {
  return Control("GET", "/_test/objects");
}
void FakeCluster::Compact() const {
  (void)Control("POST", "/_test/compact");
}

std::vector<std::string> FakeCluster::Names(const std::string& kind,
                                            const std::string& namespace_name) const {
  std::vector<std::string> names;
  const auto objects = Objects();
  for (const auto& o : objects.value(kind, nlohmann::json::array())) {
    const auto metadata = o.value("metadata", nlohmann::json::object());
    if (metadata.value("namespace", "") == namespace_name) {
      names.push_back(metadata.value("name", ""));
    }
  }
  return names;
}

std::string FakeCluster::PodLog(const std::string& namespace_name, const std::string& pod) const {
  HttpClient client("127.0.0.1", port_, ClientTls{pki_.ca.cert_file, "", ""});
  return client.Get("/_test/pod-log?namespace=" + namespace_name + "&name=" + pod).body;
}

}  // namespace airlock::test

namespace airlock::test {

void FakeCluster::OomKill(const std::string& namespace_name, const std::string& pod) const {
  HttpClient client("127.0.0.1", port_, ClientTls{pki_.ca.cert_file, "", ""});
  auto reply = client.Post("/_test/pod-oom?namespace=" + namespace_name + "&name=" + pod, "{}");
  if (reply.status != 200) throw std::runtime_error("fake cluster pod-oom: " + reply.body);
}

void FakeCluster::SetPodStatus(const std::string& namespace_name, const std::string& pod,
                               const nlohmann::json& status) const {
  HttpClient client("127.0.0.1", port_, ClientTls{pki_.ca.cert_file, "", ""});
  auto reply =
      client.Post("/_test/pod-status?namespace=" + namespace_name + "&name=" + pod, status.dump());
  if (reply.status != 200) throw std::runtime_error("fake cluster pod-status: " + reply.body);
}

}  // namespace airlock::test
