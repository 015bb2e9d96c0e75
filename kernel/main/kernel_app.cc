#include "kernel/main/kernel_app.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "kernel/agent/agent_registry.h"
#include "kernel/api/http_server.h"
#include "kernel/api/identity_chain.h"
#include "kernel/api/v1_api.h"
#include "kernel/audit/audit_log.h"
#include "kernel/core/metrics.h"
#include "kernel/core/request_manager.h"
#include "kernel/enclave/enclave_runtime.h"
#include "kernel/main/openapi_document.h"
#include "kernel/main/state_backend.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/kernel_secrets.h"
#include "kernel/plugin_host/plugin_file.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"

namespace airlock {

using nlohmann::json;
using namespace plugin_host;

namespace {

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string SelfDirectory() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

// The kernel's side of the host services table. Secrets: see KernelSecrets
// (data-source references resolve only inside enclaves).
class KernelHostCallbacks : public HostCallbacks {
 public:
  void set_audit(AuditLog* audit) { audit_ = audit; }

  // Adds the references of a kernel-side plugin's configuration to those the
  // kernel may resolve.
  void AllowSecretsOf(const json& plugin_config) { secrets_.AllowReferencesOf(plugin_config); }

  void Log(int32_t level, std::string_view plugin, std::string_view message) override {
    switch (level) {
      case AIRLOCK_LOG_DEBUG:
        spdlog::debug("[{}] {}", plugin, message);
        break;
      case AIRLOCK_LOG_INFO:
        spdlog::info("[{}] {}", plugin, message);
        break;
      case AIRLOCK_LOG_WARN:
        spdlog::warn("[{}] {}", plugin, message);
        break;
      default:
        spdlog::error("[{}] {}", plugin, message);
        break;
    }
  }

  Status AuditEmit(std::string_view event_json) override {
    if (audit_ == nullptr) return Status::Unavailable("audit log not open");
    json event = json::parse(event_json, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object()) return Status::InvalidArgument("audit event must be a JSON object");
    event["source"] = "plugin";
    return audit_->Append(std::move(event));
  }

  int64_t NowMicros() override { return WallMicros(); }

  Result<Secret> ResolveSecret(std::string_view reference) override {
    return secrets_.Resolve(reference);
  }

  Status EnclaveServe(int fd) override { return enclave::ServeEnclave(fd); }

  std::string EnclaveExecutable() override { return SelfDirectory() + "/airlock-enclave"; }

 private:
  AuditLog* audit_ = nullptr;
  KernelSecrets secrets_;
};

}  // namespace

struct KernelApp::Parts {
  KernelConfig config;
  KernelHostCallbacks callbacks;
  std::unique_ptr<HostServicesTable> services;
  std::unique_ptr<PluginLoader> loader;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<StateStore> store;
  Metrics metrics;
  std::unique_ptr<IdentityChain> identity;
  std::unique_ptr<PolicyPlugin> policy;
  std::unique_ptr<IsolatorPlugin> isolator;
  std::unique_ptr<TunnelPlugin> tunnel;
  // Declared before `requests` so it outlives the enclaves bridged through it.
  std::unique_ptr<agent::AgentRegistry> agents;
  std::unique_ptr<RequestManager> requests;
  std::unique_ptr<V1Api> api;
  std::unique_ptr<HttpServer> server;
};

KernelApp::KernelApp() : parts_(std::make_unique<Parts>()) {}

KernelApp::~KernelApp() {
  Stop();
}

HttpResponse KernelApp::Handle(const HttpRequest& request) const {
  return parts_->api->Handle(request);
}

uint16_t KernelApp::port() const {
  return parts_->server ? parts_->server->port() : 0;
}
bool KernelApp::tls() const {
  return !parts_->config.server.tls_certificate_file.empty();
}

void KernelApp::Stop() {
  if (parts_->server) parts_->server->Stop();
  if (parts_->requests) parts_->requests->Shutdown();
  if (parts_->agents) parts_->agents->Stop();
}

Status KernelApp::ReloadPolicy() {
  // The whole configuration is re-read and validated; only the policy part
  // is applied (other changes need a restart).
  auto fresh = LoadKernelConfig(parts_->config.source_path, parts_->config.plugin_dir);
  if (!fresh.ok()) return fresh.status();
  parts_->callbacks.AllowSecretsOf(fresh->policy.config);
  const Status reloaded = parts_->policy->Reload(fresh->policy.config);
  (void)parts_->audit->Append({{"event", "policy.reload"},
                               {"outcome", reloaded.ok() ? "applied" : "rejected"},
                               {"reason", reloaded.ok() ? "" : reloaded.message()}});
  if (reloaded.ok()) parts_->config.policy.config = fresh->policy.config;
  return reloaded;
}

namespace {

template <typename Plugin>
Result<std::unique_ptr<Plugin>> MakePlugin(PluginLoader& loader, const PluginRef& ref,
                                           airlock_type_plugin_kind kind) {
  AIRLOCK_ASSIGN_OR_RETURN(auto library, loader.Load(ref.path, ref.sha256, kind));
  auto made = Plugin::Create(std::move(library), ref.config);
  if (!made.ok()) return made.status().WithContext("plugin " + ref.name + " (" + ref.path + ")");
  return made;
}

json CatalogJson(const KernelConfig& config) {
  json datasets = json::array();
  for (const auto& d : config.datasets) {
    json entry = d.ToJson();
    entry.erase("object");  // where the data lives is the connector's business
    datasets.push_back(std::move(entry));
  }
  return {{"datasets", datasets}};
}

json ManifestJson(const PluginManifest& m, const std::string& role, const std::string& name) {
  return {{"name", name},
          {"role", role},
          {"plugin", m.name},
          {"version", m.version},
          {"kind", PluginKindName(m.kind)},
          {"abi", std::to_string(m.abi_major) + "." + std::to_string(m.abi_minor)},
          {"path", m.path},
          {"sha256", m.sha256},
          {"description", m.description},
          {"loaded_in", "kernel"}};
}

}  // namespace

Result<std::unique_ptr<KernelApp>> KernelApp::Start(KernelConfig config) {
  std::unique_ptr<KernelApp> app(new KernelApp());
  Parts& p = *app->parts_;
  p.config = std::move(config);
  const KernelConfig& cfg = p.config;

  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(cfg.audit_path).parent_path(), ec);

  auto audit = AuditLog::Open(cfg.audit_path);
  if (!audit.ok()) return audit.status().WithContext("opening the audit log");
  p.audit = std::move(audit).value();
  p.callbacks.set_audit(p.audit.get());
  // SQLite holds a lock on its file (one kernel per state directory);
  // PostgreSQL is shared by every replica, and keeps no request text in
  // memory that another replica could make stale.
  auto store = OpenConfiguredStateStore(cfg);
  if (!store.ok()) return store.status().WithContext("opening the state store");
  spdlog::info("state store: {}", store->description);
  p.store = std::move(store->store);

  for (const auto& ref : cfg.identity) p.callbacks.AllowSecretsOf(ref.config);
  for (const PluginRef* ref : {&cfg.policy, &cfg.isolator, &cfg.tunnel}) {
    p.callbacks.AllowSecretsOf(ref->config);
  }
  p.services = std::make_unique<HostServicesTable>(p.callbacks);
  p.loader = std::make_unique<PluginLoader>(p.services->get());

  json plugins = json::array();
  std::vector<std::unique_ptr<IdentityPlugin>> identity;
  for (const auto& ref : cfg.identity) {
    AIRLOCK_ASSIGN_OR_RETURN(auto plugin,
                             MakePlugin<IdentityPlugin>(*p.loader, ref, AIRLOCK_KIND_IDENTITY));
    plugins.push_back(ManifestJson(plugin->manifest(), "identity", ref.name));
    identity.push_back(std::move(plugin));
  }
  p.identity = std::make_unique<IdentityChain>(std::move(identity));
  AIRLOCK_ASSIGN_OR_RETURN(p.policy,
                           MakePlugin<PolicyPlugin>(*p.loader, cfg.policy, AIRLOCK_KIND_POLICY));
  plugins.push_back(ManifestJson(p.policy->manifest(), "policy", cfg.policy.name));
  AIRLOCK_ASSIGN_OR_RETURN(
      p.isolator, MakePlugin<IsolatorPlugin>(*p.loader, cfg.isolator, AIRLOCK_KIND_ISOLATOR));
  json isolator_entry = ManifestJson(p.isolator->manifest(), "isolator", cfg.isolator.name);
  if (auto isolation = p.isolator->DescribeIsolation(); isolation.ok()) {
    isolator_entry["isolation"] = *isolation;
    if (isolation->value("development_only", false)) {
      spdlog::warn("isolator '{}' provides NO isolation and is for development only",
                   cfg.isolator.name);
    }
  }
  plugins.push_back(std::move(isolator_entry));
  AIRLOCK_ASSIGN_OR_RETURN(p.tunnel,
                           MakePlugin<TunnelPlugin>(*p.loader, cfg.tunnel, AIRLOCK_KIND_TUNNEL));
  plugins.push_back(ManifestJson(p.tunnel->manifest(), "tunnel", cfg.tunnel.name));
  // Connectors are loaded only inside enclaves; the kernel checks the file
  // (permissions, pin) so a bad deployment fails at start, not mid-request.
  for (const auto& [name, ref] : cfg.connectors) {
    if (!ref.agent.empty()) {
      // Loaded by enclaves on the agent's host, where the file must be.
      plugins.push_back({{"name", name},
                         {"role", "connector"},
                         {"kind", "connector"},
                         {"path", ref.path},
                         {"loaded_in", "enclave on agent " + ref.agent}});
      continue;
    }
    auto checked = CheckPluginFile(ref.path);
    if (!checked.ok()) return checked.status().WithContext("connector " + name);
    if (ref.sha256 && *ref.sha256 != checked->sha256) {
      return Status::FailedPrecondition("connector " + name + ": " + ref.path +
                                        " does not match its SHA-256 pin (expected " + *ref.sha256 +
                                        ", file has " + checked->sha256 + ")");
    }
    plugins.push_back({{"name", name},
                       {"role", "connector"},
                       {"kind", "connector"},
                       {"path", checked->canonical_path},
                       {"sha256", checked->sha256},
                       {"loaded_in", "enclave"}});
  }

  if (cfg.agents.enabled) {
    auto agents = agent::AgentRegistry::Start(cfg.agents, p.audit.get());
    if (!agents.ok()) return agents.status().WithContext("starting the agent listener");
    p.agents = std::move(agents).value();
  }

  RequestManager::Dependencies deps;
  deps.config = &p.config;
  deps.store = p.store.get();
  deps.audit = p.audit.get();
  deps.policy = p.policy.get();
  deps.isolator = p.isolator.get();
  deps.tunnel = p.tunnel.get();
  deps.metrics = &p.metrics;
  deps.remote = p.agents.get();
  p.requests = std::make_unique<RequestManager>(std::move(deps));
  AIRLOCK_RETURN_IF_ERROR(p.requests->Recover().WithContext("recovering requests"));
  p.requests->Start();

  V1Api::Dependencies api;
  api.requests = p.requests.get();
  api.identity = p.identity.get();
  api.audit = p.audit.get();
  api.metrics = &p.metrics;
  api.catalog = CatalogJson(cfg);
  api.plugins = {{"plugins", plugins}};
  api.openapi = std::string(kOpenApiDocument);
  api.admin_groups = cfg.admin_groups;
  KernelApp* self = app.get();
  api.reload_policy = [self] { return self->ReloadPolicy(); };
  if (p.agents) {
    agent::AgentRegistry* agents = p.agents.get();
    api.agents = [agents] { return agents->StatusJson(); };
  }
  p.api = std::make_unique<V1Api>(std::move(api));

  HttpServerOptions options;
  options.address = cfg.server.listen_address;
  options.port = cfg.server.port;
  options.body_limit = cfg.server.body_limit_bytes;
  options.max_header_count = cfg.server.max_header_count;
  options.read_timeout = std::chrono::milliseconds(cfg.server.read_timeout_ms);
  options.io_threads = cfg.server.io_threads;
  options.handler_threads = cfg.server.handler_threads;
  if (!cfg.server.tls_certificate_file.empty()) {
    TlsOptions tls;
    tls.certificate_file = cfg.server.tls_certificate_file;
    tls.private_key_file = cfg.server.tls_private_key_file;
    tls.client_ca_file = cfg.server.tls_client_ca_file;
    options.tls = tls;
  }
  V1Api* handler = p.api.get();
  auto server =
      HttpServer::Start(options, [handler](const HttpRequest& r) { return handler->Handle(r); });
  if (!server.ok()) return server.status().WithContext("starting the HTTP server");
  p.server = std::move(server).value();
  (void)p.audit->Append({{"event", "kernel.started"},
                         {"port", p.server->port()},
                         {"isolator", cfg.isolator.name},
                         {"tunnel", cfg.tunnel.name}});
  return app;
}

}  // namespace airlock
