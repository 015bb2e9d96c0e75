// Typed kernel-side proxies over plugin instances. Each proxy owns one
// instance (destroyed through the plugin's table) and, through InstanceHolder,
// a reference to its library: the shared object stays mapped for as long as
// anything made by it lives (proxies, tunnel endpoints, enclaves).
//
// Every document a plugin returns is validated; a malformed one becomes
// Status::Internal("plugin <name> returned an invalid <thing>: ..."). Failures
// the plugin reports keep their code (NotApplicable, Unauthenticated, ...) and
// get the plugin's name as context. Exceptions never reach the kernel (the
// SDK's shims turn them into AIRLOCK_ERR_INTERNAL).
//
// Thread-safety: a proxy's const methods may be called concurrently (the ABI
// makes the plugin serialise internally). Handles (tunnel endpoint, enclave)
// are not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/plugin_host/plugin_library.h"

namespace airlock::plugin_host {

// Largest document the host accepts from a plugin in one call.
inline constexpr size_t kMaxPluginDocumentBytes = 16 * 1024 * 1024;

// One plugin instance plus the library that made it. Destroying the holder
// calls the table's destroy(), then drops the library reference.
class InstanceHolder {
 public:
  // Calls the kind's create() with `config`. The library must be of the kind
  // whose table starts with create/destroy (all kinds do).
  static Result<std::shared_ptr<InstanceHolder>> Create(std::shared_ptr<PluginLibrary> library,
                                                        const nlohmann::json& config);
  ~InstanceHolder();
  InstanceHolder(const InstanceHolder&) = delete;
  InstanceHolder& operator=(const InstanceHolder&) = delete;

  const PluginLibrary& library() const { return *library_; }
  const PluginManifest& manifest() const { return library_->manifest(); }
  void* instance() const { return instance_; }
  template <typename Table>
  const Table& table() const {
    return library_->table<Table>();
  }

 private:
  InstanceHolder(std::shared_ptr<PluginLibrary> library, void* instance)
      : library_(std::move(library)), instance_(instance) {}

  std::shared_ptr<PluginLibrary> library_;
  void* instance_;
};

// Runs the plugin's own configuration check (the manifest's check_config,
// ABI 1.1) on `config` without making an instance: nothing is started.
// NotImplemented when the plugin has no check_config; otherwise its verdict,
// named after the plugin.
Status CheckPluginConfig(const PluginLibrary& library, const nlohmann::json& config);

class IdentityPlugin {
 public:
  // InvalidArgument unless `library` is an identity plugin; create()'s status otherwise.
  static Result<std::unique_ptr<IdentityPlugin>> Create(std::shared_ptr<PluginLibrary> library,
                                                        const nlohmann::json& config);

  // The principal the request authenticates as, with `provider` set to the
  // plugin's name (whatever the plugin put there). NotApplicable: the request
  // carries no credential this provider understands (try the next one).
  // `request.size` is set by the proxy.
  Result<Principal> Authenticate(const airlock_type_http_request_view& request) const;

  const PluginManifest& manifest() const { return holder_->manifest(); }

 private:
  explicit IdentityPlugin(std::shared_ptr<InstanceHolder> holder) : holder_(std::move(holder)) {}
  std::shared_ptr<InstanceHolder> holder_;
};

class PolicyPlugin {
 public:
  static Result<std::unique_ptr<PolicyPlugin>> Create(std::shared_ptr<PluginLibrary> library,
                                                      const nlohmann::json& config);

  Result<Decision> Evaluate(const PolicyInput& input) const;
  // NotImplemented when the plugin has no reload; on failure the old policy stays.
  Status Reload(const nlohmann::json& config) const;

  const PluginManifest& manifest() const { return holder_->manifest(); }

 private:
  explicit PolicyPlugin(std::shared_ptr<InstanceHolder> holder) : holder_(std::move(holder)) {}
  std::shared_ptr<InstanceHolder> holder_;
};

class ConnectorPlugin {
 public:
  static Result<std::unique_ptr<ConnectorPlugin>> Create(std::shared_ptr<PluginLibrary> library,
                                                         const nlohmann::json& config);

  Result<Catalog> Describe() const;
  // Streams the scoped dataset into `consumer` (schema, then batches). The
  // schema and batches handed over keep this plugin's library loaded until
  // released (their release callbacks are plugin code).
  Status Pull(const PullSpec& spec, sdk::BatchConsumer& consumer) const;

  const PluginManifest& manifest() const { return holder_->manifest(); }

 private:
  explicit ConnectorPlugin(std::shared_ptr<InstanceHolder> holder) : holder_(std::move(holder)) {}
  std::shared_ptr<InstanceHolder> holder_;
};

// A published tunnel endpoint. Move-only; closing (explicitly or on
// destruction) revokes it at once. The query channel given to Open must stay
// valid until Close returns.
class TunnelEndpointHandle {
 public:
  TunnelEndpointHandle(std::shared_ptr<InstanceHolder> holder, void* endpoint)
      : holder_(std::move(holder)), endpoint_(endpoint) {}
  ~TunnelEndpointHandle() { Close(); }
  TunnelEndpointHandle(TunnelEndpointHandle&& other) noexcept
      : holder_(std::move(other.holder_)), endpoint_(other.endpoint_) {
    other.endpoint_ = nullptr;
  }
  TunnelEndpointHandle& operator=(TunnelEndpointHandle&& other) noexcept;
  TunnelEndpointHandle(const TunnelEndpointHandle&) = delete;
  TunnelEndpointHandle& operator=(const TunnelEndpointHandle&) = delete;

  // Closes the endpoint once, saying why through close_with_reason (ABI 1.1)
  // when the plugin's table has it, else through close(); later calls do
  // nothing. Destruction closes with AIRLOCK_CLOSE_REVOKED.
  void Close(airlock_type_close_reason reason = AIRLOCK_CLOSE_REVOKED);
  bool closed() const { return holder_ == nullptr; }
  // Moves the endpoint's window end to `not_after` (Unix seconds) through
  // extend (ABI 1.3); NotImplemented when the plugin's table lacks it.
  Status Extend(int64_t not_after);

 private:
  std::shared_ptr<InstanceHolder> holder_;  // null once closed
  void* endpoint_;
};

class TunnelPlugin {
 public:
  static Result<std::unique_ptr<TunnelPlugin>> Create(std::shared_ptr<PluginLibrary> library,
                                                      const nlohmann::json& config);

  // Publishes an endpoint for `spec` ({"request_id","principal","not_after"})
  // over `channel` (which must stay valid until the endpoint is closed).
  // Returns the endpoint and the grant ({"url","credential",...}: a JSON
  // object with a string "url"); a malformed grant closes the endpoint and
  // fails with Internal. The grant holds a credential: never log it.
  Result<std::pair<std::unique_ptr<TunnelEndpointHandle>, nlohmann::json>> Open(
      const nlohmann::json& spec, const airlock_type_query_channel* channel) const;

  const PluginManifest& manifest() const { return holder_->manifest(); }
  // Whether its endpoints' windows can be extended (extend, ABI 1.3).
  bool ExtendsWindows() const {
    return AIRLOCK_VTABLE_HAS(holder_->library(), airlock_type_tunnel_vtable, extend);
  }

 private:
  explicit TunnelPlugin(std::shared_ptr<InstanceHolder> holder) : holder_(std::move(holder)) {}
  std::shared_ptr<InstanceHolder> holder_;
};

// A provisioned enclave. Owns the control descriptor until ReleaseControlFd.
// Destroying it terminates the enclave (if not yet) and closes the descriptor
// (if still owned).
class EnclaveHandle {
 public:
  EnclaveHandle(std::shared_ptr<InstanceHolder> holder, void* enclave, int control_fd)
      : holder_(std::move(holder)), enclave_(enclave), control_fd_(control_fd) {}
  ~EnclaveHandle();
  EnclaveHandle(const EnclaveHandle&) = delete;
  EnclaveHandle& operator=(const EnclaveHandle&) = delete;

  // The connected control channel; -1 after ReleaseControlFd.
  int control_fd() const { return control_fd_; }
  // Hands the descriptor to the caller (who closes it); the handle forgets it.
  int ReleaseControlFd();

  // Kills the enclave and wipes it (the plugin's terminate()), then closes the
  // control descriptor if still owned. Later calls return Ok and do nothing.
  Status Terminate();
  bool terminated() const { return holder_ == nullptr; }

 private:
  std::shared_ptr<InstanceHolder> holder_;  // null once terminated
  void* enclave_;
  int control_fd_;
};

class IsolatorPlugin {
 public:
  static Result<std::unique_ptr<IsolatorPlugin>> Create(std::shared_ptr<PluginLibrary> library,
                                                        const nlohmann::json& config);

  // Provisions an enclave for `spec`. A launch without an open control
  // descriptor is terminated and reported as Internal.
  Result<std::unique_ptr<EnclaveHandle>> Provision(const nlohmann::json& spec) const;
  // {"isolation": "...", ...}: a JSON object with a string "isolation".
  Result<nlohmann::json> DescribeIsolation() const;
  // Ok when the plugin has no reap_orphans.
  Status ReapOrphans() const;

  const PluginManifest& manifest() const { return holder_->manifest(); }

 private:
  explicit IsolatorPlugin(std::shared_ptr<InstanceHolder> holder) : holder_(std::move(holder)) {}
  std::shared_ptr<InstanceHolder> holder_;
};

// A notifier (ABI 1.2): carries notifications the kernel composed.
class NotifierPlugin {
 public:
  static Result<std::unique_ptr<NotifierPlugin>> Create(std::shared_ptr<PluginLibrary> library,
                                                        const nlohmann::json& config);

  // Hands `notification` (a JSON object as text) to the plugin. Ok once the
  // receiver accepted it; Unavailable, DeadlineExceeded or
  // ResourceExhausted when it may be tried again; any other code when the
  // receiver refused it for good. Blocks for as long as the plugin does.
  Status Deliver(std::string_view notification) const;

  const PluginManifest& manifest() const { return holder_->manifest(); }

 private:
  explicit NotifierPlugin(std::shared_ptr<InstanceHolder> holder) : holder_(std::move(holder)) {}
  std::shared_ptr<InstanceHolder> holder_;
};

}  // namespace airlock::plugin_host
