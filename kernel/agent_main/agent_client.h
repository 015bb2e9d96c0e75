// The agent's side of the link: enrolls once (one-time token + CSR), then
// keeps one outbound mutual-TLS connection to the kernel, answers its
// provision/terminate requests through the local isolator, relays enclave
// channels, sends heartbeats and renews its certificate before it expires.
// The agent listens on nothing.
//
// When the link drops, the agent destroys every enclave it runs (their data
// must not outlive the kernel's control of them) and reconnects.
// Thread-safety: Run blocks the calling thread; Stop may be called from any.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/agent/link_connection.h"
#include "kernel/agent_main/agent_config.h"
#include "kernel/agent_main/agent_enclave.h"
#include "kernel/agent_main/site_specs.h"
#include "kernel/common/secret.h"
#include "kernel/plugin_host/plugin_instances.h"

namespace airlock::agent {

class AgentClient {
 public:
  AgentClient(AgentConfig config, const plugin_host::IsolatorPlugin& isolator,
              nlohmann::json isolation);
  ~AgentClient();

  // Enrolls when the state directory holds no certificate yet. Refusals by
  // the kernel come back as PermissionDenied with its reason.
  Status EnsureEnrolled();
  // Connects and serves until Stop().
  void Run();
  void Stop();

  // The link certificate followed by its private key (mode 0600). One file,
  // replaced by one rename, so that a crash during enrollment or renewal
  // never leaves a key that does not match the certificate.
  std::string identity_file() const { return config_.state_dir + "/identity.pem"; }

 private:
  // One enrollment exchange with `kernel`; Unavailable when it cannot be reached.
  Status AskToEnroll(const KernelAddress& kernel, const Secret& token, const std::string& csr_pem,
                     nlohmann::json* reply);
  const KernelAddress& kernel() const { return config_.kernels[next_kernel_]; }
  void Connect();
  // Where the link's TCP connection goes first: the kernel, or the proxy.
  struct Hop {
    std::string host;
    uint16_t port = 0;
    bool proxied = false;
  };
  Result<Hop> FirstHop(const KernelAddress& kernel) const;
  // The proxy's CONNECT request for `kernel`, with the credentials resolved now.
  Result<std::string> ProxyRequest(const KernelAddress& kernel) const;
  void OnConnected(std::shared_ptr<LinkConnection> link);
  void OnFrame(const std::shared_ptr<LinkConnection>& link, LinkFrame frame);
  void OnControl(const std::shared_ptr<LinkConnection>& link, const nlohmann::json& doc);
  void OnClosed(const Status& why);
  void ScheduleReconnect();
  void Heartbeat(std::weak_ptr<LinkConnection> link);
  // Describes the site's own datasets in a describe enclave and sends their
  // metadata ("catalog"); again every sync_interval_seconds while linked.
  void SyncCatalog(std::weak_ptr<LinkConnection> link);
  void ScheduleSync(std::weak_ptr<LinkConnection> link);
  void MaybeRenew(const std::shared_ptr<LinkConnection>& link);
  void TerminateAll();

  AgentConfig config_;
  const plugin_host::IsolatorPlugin& isolator_;
  nlohmann::json isolation_;
  boost::asio::io_context io_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer sync_timer_;
  const SiteSpecs site_;
  boost::asio::thread_pool dial_pool_{2};
  boost::asio::thread_pool provision_pool_{2};
  int64_t heartbeat_ms_ = 1000;
  int64_t certificate_lifetime_s_ = 0;  // as the kernel announced it
  int64_t offline_after_ms_ = 30000;    // as the kernel announced it
  bool renewing_ = false;
  std::string pending_key_pem_;           // the key of an outstanding renewal (wiped after)
  std::shared_ptr<LinkConnection> link_;  // io thread only
  size_t next_kernel_ = 0;                // io thread only: the replica dialled next
  std::string last_proxy_refusal_;        // io thread only: logged once while it lasts

  std::mutex mu_;
  std::map<uint32_t, std::shared_ptr<AgentEnclave>> enclaves_;  // GUARDED_BY(mu_)
  std::set<uint32_t> cancelled_;  // GUARDED_BY(mu_): terminated before they were provisioned
};

}  // namespace airlock::agent
