// Tunnel endpoints on this replica for ready requests that another replica
// serves. A client whose tunnel connection reaches a replica that does not
// hold the request's enclave (a load balancer in front of the tunnels) is
// served all the same: the endpoint accepts the requester's credential (the
// verifier in the shared state) and its query channel forwards each query to
// the owner over the peer link, where it runs and is audited.
//
// The request manager keeps the set in step with the shared state on every
// replica scan (Sync), opens one at once when a credential is collected here
// (Ensure), and closes one before this replica takes the request over.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/values.hpp"

namespace airlock {

class AuditLog;
class PeerClient;
namespace plugin_host {
class TunnelPlugin;
}  // namespace plugin_host
struct ForwardedEndpoint;

class ForwardedEndpoints {
 public:
  struct Dependencies {
    const plugin_host::TunnelPlugin* tunnel = nullptr;
    const PeerClient* peer = nullptr;
    AuditLog* audit = nullptr;
    std::string transport;  // the tunnel's instance name, for audit records
    std::chrono::milliseconds query_timeout{30000};
  };

  // What an endpoint forwards: a ready request served by replica `owner`.
  struct Target {
    std::string request_id;
    Principal requester;
    int64_t not_after_us = 0;
    std::string verifier;   // the tunnel's verifier of the requester's credential
    std::string owner;      // replica id
    std::string owner_url;  // its API URL
  };

  explicit ForwardedEndpoints(Dependencies deps);
  ~ForwardedEndpoints();

  // Opens an endpoint for every target not yet open here, follows owner
  // changes, and returns the ids of open endpoints that are not targets any
  // more (the caller closes them, saying why).
  std::vector<std::string> Sync(const std::vector<Target>& targets);
  // Opens an endpoint for `target` unless one is open (then follows its owner).
  Status Ensure(const Target& target);
  // Closes the endpoint of request `id` (no-op when none is open).
  void Close(const std::string& id, airlock_type_close_reason reason);
  void CloseAll(airlock_type_close_reason reason);
  std::vector<std::string> Ids() const;

 private:
  Status OpenLocked(const Target& target);  // REQUIRES(mu_)

  Dependencies deps_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<ForwardedEndpoint>> open_;  // GUARDED_BY(mu_)
};

}  // namespace airlock
