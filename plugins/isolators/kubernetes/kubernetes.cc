#include "kubernetes.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <optional>
#include <thread>

#include "pod_status.h"

extern char** environ;

namespace airlock::isolators::kubernetes {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxEgressRoutes = 256;
constexpr size_t kMaxSecretEnv = 64;
constexpr size_t kMaxReadPaths = 64;
constexpr int kWatchWindowSeconds = 60;
// How long terminate waits for the status of an enclave that ended by itself.
constexpr std::chrono::seconds kEndReasonWait{3};

// What the host tracks per enclave.
class PodEnclave : public sdk::Enclave {
 public:
  PodEnclave(std::string pod, std::string fingerprint, std::string request_id,
             std::shared_ptr<PendingLink> link)
      : pod_(std::move(pod)),
        fingerprint_(std::move(fingerprint)),
        request_id_(std::move(request_id)),
        link_(std::move(link)) {}
  const PendingLink& link() const { return *link_; }
  const std::string& pod() const { return pod_; }
  const std::string& request_id() const { return request_id_; }
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  std::string pod_;
  std::string fingerprint_;
  std::string request_id_;
  std::shared_ptr<PendingLink> link_;
};

// Whether a pod's container has ended or the pod is in a final phase.
bool PodFinished(const Json& pod) {
  const Json status = pod.value("status", Json::object());
  const std::string phase = status.value("phase", "");
  if (phase == "Failed" || phase == "Succeeded") return true;
  for (const auto& c : status.value("containerStatuses", Json::array())) {
    if (c.value("state", Json::object()).contains("terminated")) return true;
  }
  return false;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    // Only the variables the defaults come from; nothing else is kept.
    const std::string name = entry.substr(0, eq);
    if (eq != std::string::npos &&
        (name == "HOSTNAME" || name == "POD_IP" || name == "KUBERNETES_SERVICE_HOST" ||
         name == "KUBERNETES_SERVICE_PORT")) {
      out[name] = entry.substr(eq + 1);
    }
  }
  return out;
}

std::string RandomSuffix() {
  unsigned char bytes[3];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "000000";
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool IsIpLiteral(const std::string& host, bool* v6) {
  unsigned char buffer[16];
  if (::inet_pton(AF_INET, host.c_str(), buffer) == 1) {
    *v6 = false;
    return true;
  }
  if (::inet_pton(AF_INET6, host.c_str(), buffer) == 1) {
    *v6 = true;
    return true;
  }
  return false;
}

// The approved sources as NetworkPolicy peers: literal addresses as they
// are, host names resolved now (the policy names addresses; the pod still
// dials the name and so also needs DNS).
Result<std::vector<EgressPeer>> EgressPeers(const Json& spec) {
  std::vector<EgressPeer> peers;
  auto it = spec.find("egress");
  if (it == spec.end() || it->is_null()) return peers;
  if (!it->is_array() || it->size() > kMaxEgressRoutes) {
    return Status::InvalidArgument("spec.egress must be an array of at most 256 routes");
  }
  for (const auto& route : *it) {
    EgressPeer peer;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(route, "host", &peer.host, true, "spec.egress"));
    int64_t port = 0;
    AIRLOCK_RETURN_IF_ERROR(json_read::Int(route, "port", &port, true, "spec.egress"));
    if (port < 1 || port > 65535 || peer.host.empty() || peer.host.size() > 253) {
      return Status::InvalidArgument("spec.egress: bad route");
    }
    peer.port = static_cast<uint16_t>(port);
    bool v6 = false;
    if (IsIpLiteral(peer.host, &v6)) {
      peer.cidrs.push_back(peer.host + (v6 ? "/128" : "/32"));
    } else {
      peer.named = true;
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      if (::getaddrinfo(peer.host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
        return Status::Unavailable("cannot resolve the source host '" + peer.host +
                                   "' to write the enclave's NetworkPolicy");
      }
      for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN] = {0};
        if (a->ai_family == AF_INET) {
          ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, text,
                      sizeof text);
          peer.cidrs.push_back(std::string(text) + "/32");
        } else if (a->ai_family == AF_INET6) {
          ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, text,
                      sizeof text);
          peer.cidrs.push_back(std::string(text) + "/128");
        }
      }
      ::freeaddrinfo(found);
      std::sort(peer.cidrs.begin(), peer.cidrs.end());
      peer.cidrs.erase(std::unique(peer.cidrs.begin(), peer.cidrs.end()), peer.cidrs.end());
    }
    peers.push_back(std::move(peer));
  }
  return peers;
}

std::string HostPort(const std::string& host, uint16_t port) {
  bool v6 = false;
  const bool literal = IsIpLiteral(host, &v6);
  return (literal && v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

KubernetesIsolator::KubernetesIsolator(KubernetesConfig config, sdk::Host host,
                                       std::unique_ptr<KubeClient> client,
                                       std::unique_ptr<LinkListener> link)
    : config_(std::move(config)),
      host_(std::move(host)),
      client_(std::move(client)),
      link_(std::move(link)) {}

KubernetesIsolator::~KubernetesIsolator() {
  // The kernel is going: its enclaves go with it (a successor would remove
  // them anyway, but not before it starts).
  std::set<std::string> pods;
  {
    std::lock_guard lock(mutex_);
    pods.swap(live_pods_);
  }
  for (const auto& pod : pods) {
    const Status deleted = DeleteObjects(pod, true);
    if (!deleted.ok()) host_.Warn("enclave " + pod + ": " + deleted.message());
  }
}

Result<std::unique_ptr<KubernetesIsolator>> KubernetesIsolator::Create(const Json& config,
                                                                       const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(KubernetesConfig parsed,
                           ParseConfig(config, host, ProcessEnvironment()));
  auto client = KubeClient::Create(parsed.cluster, host);
  // The client holds what it needs; no second copy of a secret stays here.
  for (std::string* secret : {&parsed.cluster.token, &parsed.cluster.client_key_pem}) {
    OPENSSL_cleanse(secret->data(), secret->size());
    secret->clear();
  }
  if (!client.ok()) return client.status();
  AIRLOCK_ASSIGN_OR_RETURN(auto link,
                           LinkListener::Start(parsed.link_listen_address, parsed.link_port,
                                               parsed.link_advertise_host, host));
  // With an ephemeral port (tests), the advertised port is the bound one.
  parsed.link_port = link->port();
  return std::unique_ptr<KubernetesIsolator>(
      new KubernetesIsolator(std::move(parsed), host, std::move(client).value(), std::move(link)));
}

std::string KubernetesIsolator::Path(const std::string& resource) const {
  const std::string group =
      resource == "networkpolicies" ? "/apis/networking.k8s.io/v1" : "/api/v1";
  return group + "/namespaces/" + config_.namespace_name + "/" + resource;
}

Result<sdk::EnclaveLaunch> KubernetesIsolator::Provision(const Json& spec) {
  std::string request_id;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(spec, "request_id", &request_id, true, "spec"));
  if (request_id.empty() || request_id.size() > 256) {
    return Status::InvalidArgument("spec.request_id must be 1 to 256 characters");
  }
  EnclaveInputs in;
  in.request_id = request_id;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(spec, "read_paths", &in.read_paths, false, "spec"));
  if (in.read_paths.size() > kMaxReadPaths) {
    return Status::InvalidArgument("spec.read_paths has more than 64 paths");
  }
  // Files of the image (connector plugins) are there already.
  std::erase_if(in.read_paths, [&](const std::string& path) {
    return std::any_of(config_.image_paths.begin(), config_.image_paths.end(),
                       [&](const std::string& dir) { return path.rfind(dir, 0) == 0; });
  });
  for (const auto& path : in.read_paths) {
    if (!config_.mounts.count(path)) {
      return Status::FailedPrecondition(
          "the kubernetes isolator cannot show a pod the kernel host's file " +
          path.substr(0, 256) +
          "; map it to a Secret or ConfigMap key under the isolator's mounts, or serve the "
          "dataset through an agent on the host that has the files");
    }
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(spec, "secret_env", &in.secret_env, false, "spec"));
  if (in.secret_env.size() > kMaxSecretEnv) {
    return Status::InvalidArgument("spec.secret_env has more than 64 names");
  }
  in.memory_bytes = int64_t{1} << 30;
  if (auto limits = spec.find("limits"); limits != spec.end() && limits->is_object()) {
    AIRLOCK_RETURN_IF_ERROR(
        json_read::Int(*limits, "memory_bytes", &in.memory_bytes, false, "spec.limits"));
  }
  if (in.memory_bytes < (int64_t{16} << 20)) {
    return Status::InvalidArgument("spec.limits.memory_bytes is below 16 MiB");
  }
  int64_t max_window_seconds = 86400;
  AIRLOCK_RETURN_IF_ERROR(
      json_read::Int(spec, "max_window_seconds", &max_window_seconds, false, "spec"));
  // The cluster ends the pod by itself at the longest the window could
  // last, even if no kernel is left to do it.
  in.active_deadline_seconds = std::max<int64_t>(1, max_window_seconds) +
                               config_.deadline_slack_seconds +
                               config_.provision_timeout.count() / 1000;
  AIRLOCK_ASSIGN_OR_RETURN(in.egress, EgressPeers(spec));
  in.name = EnclaveName(request_id, RandomSuffix());
  in.kernel_address = HostPort(config_.link_advertise_host, config_.link_port);

  const auto lifetime =
      std::chrono::duration_cast<std::chrono::seconds>(config_.provision_timeout) +
      std::chrono::seconds(60);
  AIRLOCK_ASSIGN_OR_RETURN(ExpectedEnclave expected, link_->Expect(in.name, lifetime));
  in.ca_pem = expected.ca_pem;
  in.certificate_pem = expected.certificate_pem;
  in.key_pem = expected.key_pem.view();
  auto fail = [&](Status status, bool pod_created) -> Status {
    link_->Forget(expected.fingerprint);
    ::close(expected.host_fd);
    const Status cleaned = DeleteObjects(in.name, pod_created);
    if (!cleaned.ok()) host_.Warn("enclave " + in.name + ": cleanup: " + cleaned.message());
    return status;
  };
  auto objects = BuildEnclaveObjects(config_, in);
  if (!objects.ok()) return fail(objects.status(), false);

  // The policy exists before the pod does, so the pod never runs unconfined.
  auto created =
      client_->Expect("POST", Path("networkpolicies"), &objects->network_policy,
                      "create the enclave's NetworkPolicy in namespace " + config_.namespace_name);
  if (!created.ok()) return fail(created.status(), false);
  created = client_->Expect("POST", Path("pods"), &objects->pod,
                            "create the enclave pod in namespace " + config_.namespace_name);
  if (!created.ok()) return fail(created.status(), false);
  std::string resource_version, uid;
  if (created->is_object()) {
    const Json metadata = created->value("metadata", Json::object());
    resource_version = metadata.value("resourceVersion", "");
    uid = metadata.value("uid", "");
  }
  // The pod waits for its Secret volume; the Secret is the pod's, so it
  // goes with the pod (Kubernetes' garbage collector), even if no kernel is
  // left to delete it.
  SetOwner(objects->secret, in.name, uid);
  created =
      client_->Expect("POST", Path("secrets"), &objects->secret,
                      "create the enclave's link Secret in namespace " + config_.namespace_name);
  objects->secret = nullptr;  // the only copy of the key outside the listener's memory
  if (!created.ok()) return fail(created.status(), true);
  host_.Info("enclave " + in.name + " for request " + request_id + ": pod created");

  const Status arrived = AwaitEnclave(in.name, resource_version, *expected.link);
  if (!arrived.ok()) return fail(arrived, true);

  // The credential was for one connection, now made: its Secret goes.
  auto deleted = client_->Call("DELETE", Path("secrets") + "/" + LinkSecretName(in.name), nullptr);
  if (!deleted.ok() || (deleted->status >= 300 && deleted->status != 404)) {
    host_.Warn("enclave " + in.name +
               ": could not delete its link Secret yet; it is removed "
               "with the enclave");
  }
  {
    std::lock_guard lock(mutex_);
    live_pods_.insert(in.name);
  }
  sdk::EnclaveLaunch launch;
  launch.control_fd = expected.host_fd;
  launch.enclave =
      std::make_unique<PodEnclave>(in.name, expected.fingerprint, request_id, expected.link);
  return launch;
}

Status KubernetesIsolator::AwaitEnclave(const std::string& pod_name,
                                        const std::string& resource_version, PendingLink& link) {
  const Clock::time_point deadline = Clock::now() + config_.provision_timeout;
  std::mutex mutex;
  std::optional<std::string> failure;  // GUARDED_BY(mutex)
  std::string last_phase = "Pending";  // GUARDED_BY(mutex)
  WatchCanceller canceller;
  const std::string pod_path = Path("pods") + "/" + pod_name;

  auto look_at = [&](const Json& pod) {
    std::lock_guard lock(mutex);
    last_phase = PodPhaseSummary(pod);
    if (!failure) failure = StartFailure(pod);
    return !failure.has_value();
  };
  std::thread watcher([&] {
    std::string rv = resource_version;
    while (!canceller.cancelled() && !link.connected()) {
      if (rv.empty()) {
        // Where the pod is now, and from which version to watch it.
        auto pod = client_->Expect("GET", pod_path, nullptr, "read the enclave pod");
        if (!pod.ok()) {
          std::lock_guard lock(mutex);
          if (pod.status().code() == StatusCode::kNotFound) failure = "the pod was deleted";
          if (pod.status().code() == StatusCode::kPermissionDenied)
            failure = pod.status().message();
          if (failure) break;
        } else {
          rv = pod->value("metadata", Json::object()).value("resourceVersion", "");
          if (!look_at(*pod)) break;
        }
      }
      bool gone = false;
      const std::string target =
          Path("pods") + "?watch=1&fieldSelector=" + QueryEscape("metadata.name=" + pod_name) +
          "&timeoutSeconds=" + std::to_string(kWatchWindowSeconds) +
          (rv.empty() ? "" : "&resourceVersion=" + QueryEscape(rv));
      const Status watched = client_->Watch(
          target,
          [&](const Json& event) {
            const std::string type = event.value("type", "");
            const Json object = event.value("object", Json::object());
            if (type == "ERROR") {
              // 410 Gone: the version is too old; list again and resume.
              gone = true;
              return false;
            }
            if (type == "DELETED") {
              std::lock_guard lock(mutex);
              failure = "the pod was deleted";
              return false;
            }
            if (auto v = object.value("metadata", Json::object()).value("resourceVersion", "");
                !v.empty()) {
              rv = v;
            }
            return type == "BOOKMARK" || look_at(object);
          },
          &canceller, "watch the enclave pod");
      {
        std::lock_guard lock(mutex);
        if (failure) break;
      }
      if (gone) {
        rv.clear();
        continue;
      }
      if (!watched.ok() && !canceller.cancelled()) {
        if (watched.code() == StatusCode::kPermissionDenied) {
          std::lock_guard lock(mutex);
          failure = watched.message();
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        rv.clear();
      }
    }
    link.Abandon();  // wakes the wait below
  });
  const bool connected = link.WaitConnected(deadline);
  canceller.Cancel();
  watcher.join();
  if (connected) return Status::Ok();
  std::lock_guard lock(mutex);
  if (failure) return Status::Unavailable("enclave pod " + pod_name + ": " + *failure);
  return Status::DeadlineExceeded("enclave pod " + pod_name + " did not dial the kernel within " +
                                  std::to_string(config_.provision_timeout.count()) +
                                  " ms (it is " + last_phase + ")");
}

Status KubernetesIsolator::DeleteObjects(const std::string& pod_name, bool pod_too) {
  Status first = Status::Ok();
  auto remove = [&](const std::string& path) {
    auto reply = client_->Call("DELETE", path, nullptr);
    if (!reply.ok()) {
      if (first.ok()) first = reply.status();
    } else if (reply->status >= 300 && reply->status != 404 && first.ok()) {
      first = StatusFromReply(*reply, "delete " + path);
    }
  };
  if (pod_too) remove(Path("pods") + "/" + pod_name + "?gracePeriodSeconds=0");
  remove(Path("secrets") + "/" + LinkSecretName(pod_name));
  remove(Path("networkpolicies") + "/" + PolicyName(pod_name));
  return first;
}

Status KubernetesIsolator::Terminate(sdk::Enclave& enclave) {
  auto& pod = static_cast<PodEnclave&>(enclave);
  link_->Forget(pod.fingerprint());
  {
    std::lock_guard lock(mutex_);
    live_pods_.erase(pod.pod());
  }
  // An enclave whose link ended before it was told to end (killed for
  // memory, its node lost) says why only in its pod's status: wait briefly
  // for the kubelet to report it, and put Kubernetes' reason in the audit
  // trail before the pod goes.
  if (pod.link().closed()) {
    const auto deadline = Clock::now() + kEndReasonWait;
    Json last;
    while (true) {
      auto got =
          client_->Expect("GET", Path("pods") + "/" + pod.pod(), nullptr, "read the enclave pod");
      if (!got.ok()) break;
      last = std::move(got).value();
      if (PodFinished(last) || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const auto ended = last.is_null() ? std::nullopt : StartFailure(last);
    if (ended && ended->rfind("Completed", 0) != 0) {
      host_.Warn("enclave pod " + pod.pod() + " ended: " + *ended);
      (void)host_.Audit({{"event", "enclave.pod_ended"},
                         {"pod", pod.pod()},
                         {"request_id", pod.request_id()},
                         {"reason", *ended}});
    }
  }
  const Status deleted = DeleteObjects(pod.pod(), true);
  if (!deleted.ok()) {
    host_.Warn("enclave " + pod.pod() + ": " + deleted.message() +
               "; the pod ends at its activeDeadlineSeconds and the next start removes it");
  }
  return deleted;
}

Json KubernetesIsolator::DescribeIsolation() {
  // Pod settings the isolator asks for; the kubelet and the container
  // runtime enforce them, so none is a namespace of this host's.
  Json mechanisms = {{"pod", true},
                     {"network_policy", true},
                     {"seccomp_runtime_default", true},
                     {"read_only_root", true},
                     {"non_root", true},
                     {"no_privilege_escalation", true},
                     {"capabilities_drop_all", true},
                     {"runtime_class", !config_.runtime_class.empty()}};
  Json minimum = Json::array();
  for (const auto& m : config_.min_isolation) minimum.push_back(m);
  return Json{
      {"isolator", "kubernetes"},
      {"isolation", config_.runtime_class.empty() ? "container" : "sandboxed-container"},
      {"development_only", false},
      {"mechanisms", mechanisms},
      {"min_isolation", minimum},
      {"namespace", config_.namespace_name},
      {"runtime_class", config_.runtime_class},
      {"filesystem", "read-only container root; the link credential and an in-memory /tmp only"},
      {"network",
       "per-enclave NetworkPolicy: no ingress; egress only to the approved sources, the kernel's "
       "enclave link and, for sources named by host, DNS"},
      {"egress", "direct"}};
}

Status KubernetesIsolator::ReapOrphans() {
  size_t removed = 0;
  Status first = Status::Ok();
  auto reap = [&](const std::string& resource, const std::string& selector,
                  const std::string& extra) {
    auto listed =
        client_->Expect("GET", Path(resource) + "?labelSelector=" + QueryEscape(selector) + extra,
                        nullptr, "list " + resource + " in namespace " + config_.namespace_name);
    if (!listed.ok()) {
      if (first.ok()) first = listed.status();
      return;
    }
    const Json items = listed->value("items", Json::array());
    for (const auto& item : items) {
      const std::string name = item.value("metadata", Json::object()).value("name", "");
      if (name.empty()) continue;
      const std::string suffix = resource == "pods" ? "?gracePeriodSeconds=0" : "";
      auto reply = client_->Call("DELETE", Path(resource) + "/" + name + suffix, nullptr);
      if (reply.ok() && (reply->status < 300 || reply->status == 404)) {
        ++removed;
        // A finished pod's policy and Secret carry its name.
        if (!extra.empty()) (void)DeleteObjects(name, false);
      } else if (first.ok()) {
        first = reply.ok() ? StatusFromReply(*reply, "delete " + resource + " " + name)
                           : reply.status();
      }
    }
  };
  // Everything this kernel started: a restarted kernel provisions its live
  // requests again, so none of its old enclaves has a channel any more.
  const std::string ours =
      "app.kubernetes.io/managed-by=airlock,airlock.dev/kernel=" + config_.kernel_id;
  // (Link Secrets belong to their pods and go with them: the kernel needs
  // no right to list Secrets.)
  reap("pods", ours, "");
  reap("networkpolicies", ours, "");
  // Finished enclave pods of any kernel (one that never came back).
  reap("pods", "app.kubernetes.io/managed-by=airlock",
       "&fieldSelector=" + QueryEscape("status.phase=Failed"));
  reap("pods", "app.kubernetes.io/managed-by=airlock",
       "&fieldSelector=" + QueryEscape("status.phase=Succeeded"));
  host_.Info("removed " + std::to_string(removed) + " enclave objects a previous kernel left");
  return first;
}

}  // namespace airlock::isolators::kubernetes
