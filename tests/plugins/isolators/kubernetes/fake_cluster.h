// A Kubernetes API server for the kubernetes isolator's tests.
//
// No Kubernetes API server can run on the machines these tests run on (none
// is packaged, nothing may be downloaded), so the tests talk to
// tests/support/kube/fake_kube_apiserver.py: a stand-in that speaks the real
// Kubernetes REST protocol as the API reference defines it (object paths,
// JSON bodies, resourceVersion, chunked watch streams, Status objects for
// 401/403/404/409/410/422) over real TLS on loopback, and plays the kubelet
// by running each pod's command as a local process with the pod's env and
// Secret volumes. What the isolator sent is read back from it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {

struct FakeClusterOptions {
  // "verb:resource" pairs the service account may not do (403 Forbidden).
  std::vector<std::string> forbid;
};

class FakeCluster {
 public:
  explicit FakeCluster(const FakeClusterOptions& options = {});
  ~FakeCluster();

  std::string server() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& ca_file() const { return pki_.ca.cert_file; }
  const std::string& token_file() const { return token_file_; }
  const std::string& token() const { return token_; }
  const std::string& dir() const { return dir_.path(); }

  // The isolator's `cluster` block for this server.
  nlohmann::json ClusterConfig() const;

  // An API call with the service account's token (status, parsed body).
  std::pair<unsigned, nlohmann::json> Api(const std::string& method, const std::string& target,
                                          const nlohmann::json& body = nullptr) const;

  // Every API request it received, in order: {method, path, query, body, status}.
  nlohmann::json Requests() const;
  // Its objects now: {"pods": [...], "secrets": [...], "networkpolicies": [...]}.
  nlohmann::json Objects() const;
  // Names of the objects of `kind` ("pods", ...) in `namespace_name`.
  std::vector<std::string> Names(const std::string& kind, const std::string& namespace_name) const;
  // Ends every open watch with 410 Gone and makes older versions too old.
  void Compact() const;
  // Replaces a pod's status (as the kubelet would report it).
  void SetPodStatus(const std::string& namespace_name, const std::string& pod,
                    const nlohmann::json& status) const;
  // Kills a pod's process as the OOM killer would; the pod ends OOMKilled.
  void OomKill(const std::string& namespace_name, const std::string& pod) const;
  // The output of a pod's process.
  std::string PodLog(const std::string& namespace_name, const std::string& pod) const;

 private:
  nlohmann::json Control(const std::string& method, const std::string& target) const;

  TempDir dir_;
  TestPki pki_;
  std::string token_;
  std::string token_file_;
  std::unique_ptr<ChildProcess> server_;
  uint16_t port_ = 0;
};

}  // namespace airlock::test
