#include "kernel/main/kernel_app.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "kernel/agent/agent_registry.h"
#include "kernel/agent/link_frame.h"
#include "kernel/agent/postgres_enrollment_book.h"
#include "kernel/api/http_server.h"
#include "kernel/api/identity_chain.h"
#include "kernel/api/v1_api.h"
#include "kernel/audit/audit_log.h"
#include "kernel/audit/audit_trail.h"
#include "kernel/console/console_assets.h"
#include "kernel/mcp/mcp_server.h"

#include "kernel/audit/postgres_export_cursors.h"
#include "kernel/core/audit_exporter.h"
#include "kernel/core/audit_metrics.h"
#include "kernel/core/catalog_describer.h"
#include "kernel/core/catalog_document.h"
#include "kernel/core/forwarded_endpoints.h"
#include "kernel/core/instance_identity.h"
#include "kernel/core/metrics.h"
#include "kernel/core/peer_client.h"
#include "kernel/core/process_metrics.h"
#include "kernel/core/request_manager.h"
#include "kernel/core/site_catalog.h"
#include "kernel/core/site_status.h"
#include "kernel/core/tenancy.h"
#include "kernel/core/tenant_audit_tagger.h"
#include "kernel/enclave/enclave_runtime.h"
#include "kernel/main/audit_setup.h"
#include "kernel/main/openapi_document.h"
#include "kernel/main/plugin_set.h"
#include "kernel/main/replica_heartbeat.h"
#include "kernel/main/state_backend.h"
#include "kernel/notify/notification_composer.h"
#include "kernel/notify/outbox_dispatcher.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/kernel_secrets.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"
#include "kernel/plugin_host/secret_reference.h"
#include "kernel/state/postgres_channel.h"

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
  // Its log (`audit`) outlives every part that appends; destroying the trail
  // signs the last checkpoint.
  std::unique_ptr<AuditTrail> audit_trail;
  AuditLog* audit = nullptr;
  std::unique_ptr<StateStore> store;
  std::string store_description;
  // Tenants (config.tenants), and what puts the tenant on every audit
  // record (it reads `store`; it leaves the log when destroyed).
  std::unique_ptr<Tenancy> tenancy;
  std::unique_ptr<TenantAuditTagger> tenant_tagger;
  // This replica's lease in the store; outlives the request manager and
  // the HTTP server, which read it through `heartbeat_view`.
  std::unique_ptr<ReplicaHeartbeater> heartbeat;
  std::atomic<ReplicaHeartbeater*> heartbeat_view{nullptr};
  std::atomic<bool> lease_lost{false};
  Metrics metrics;
  // Counts what the audit records (queries, pulls, lifecycle phases); stops
  // observing the log when destroyed, after every part that appends.
  std::unique_ptr<AuditMetrics> audit_metrics;
  // Streams the audit to the configured destinations (audit.export); goes
  // before the audit log it reads.
  std::unique_ptr<AuditExporter> exporter;
  std::unique_ptr<IdentityChain> identity;
  std::unique_ptr<PolicyPlugin> policy;
  std::map<std::string, std::unique_ptr<PolicyPlugin>> tenant_policies;
  std::unique_ptr<IsolatorPlugin> isolator;
  std::unique_ptr<TunnelPlugin> tunnel;
  std::map<std::string, std::unique_ptr<NotifierPlugin>> notifiers;
  // Tells people what became of requests: the request manager queues
  // notifications with its transitions, the dispatcher delivers them.
  std::unique_ptr<NotificationComposer> composer;
  std::unique_ptr<OutboxDispatcher> dispatcher;
  // The link to the other replicas (state.peer); the forwarding endpoints
  // live in `tunnel` and go before it.
  std::unique_ptr<PeerClient> peer;
  std::unique_ptr<ForwardedEndpoints> forwarded;
  std::shared_ptr<const Secret> peer_secret;
  // Request transitions as they happen (GET /v1/events): the hub outlives
  // the streamer, which outlives the request manager that publishes.
  EventHub events;
  // Replicas on PostgreSQL relay their events to each other through it;
  // null on one machine.
  std::unique_ptr<PostgresChannel> event_channel;
  std::unique_ptr<EventStreamer> streamer;
  // Declared before `requests` so it outlives the enclaves bridged through it.
  // What the sites' agents say their sites own; before `agents`, which
  // writes it.
  std::unique_ptr<SiteCatalog> sites;
  std::unique_ptr<agent::AgentRegistry> agents;
  std::unique_ptr<RequestManager> requests;
  // The catalog people browse, completed by what the connectors describe;
  // the describer goes before the request manager whose enclaves it uses.
  std::shared_ptr<CatalogDocument> catalog;
  std::unique_ptr<CatalogDescriber> describer;
  std::unique_ptr<mcp::McpServer> mcp;
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
  if (parts_->streamer) parts_->streamer->Shutdown();
  if (parts_->mcp) parts_->mcp->Shutdown();
  parts_->describer.reset();  // a describe in flight ends its enclave
  if (parts_->requests) parts_->requests->Shutdown();
  if (parts_->dispatcher) parts_->dispatcher->Stop();
  if (parts_->agents) parts_->agents->Stop();
  // Its enclaves are gone: survivors may take its requests over at once.
  if (parts_->heartbeat && !parts_->lease_lost.load()) parts_->heartbeat->Release();
}

bool KernelApp::lease_lost() const {
  return parts_->lease_lost.load();
}

Status KernelApp::ReloadPolicy() {
  // The whole configuration is re-read and validated; only the policy part
  // is applied (other changes need a restart).
  auto fresh = LoadKernelConfig(parts_->config.source_path, parts_->config.plugin_dir);
  if (!fresh.ok()) return fresh.status();
  parts_->callbacks.AllowSecretsOf(fresh->policy.config);
  Status reloaded = parts_->policy->Reload(fresh->policy.config);
  (void)parts_->audit->Append({{"event", "policy.reload"},
                               {"outcome", reloaded.ok() ? "applied" : "rejected"},
                               {"reason", reloaded.ok() ? "" : reloaded.message()}});
  if (reloaded.ok()) parts_->config.policy.config = fresh->policy.config;
  // Each tenant's own policy too; a tenant's policy is added or removed by
  // a restart only.
  for (auto& [name, policy] : parts_->tenant_policies) {
    const auto tenant = fresh->tenants.find(name);
    if (tenant == fresh->tenants.end() || !tenant->second.policy) continue;
    parts_->callbacks.AllowSecretsOf(tenant->second.policy->config);
    const Status applied = policy->Reload(tenant->second.policy->config);
    (void)parts_->audit->Append({{"event", "policy.reload"},
                                 {"tenant", name},
                                 {"outcome", applied.ok() ? "applied" : "rejected"},
                                 {"reason", applied.ok() ? "" : applied.message()}});
    if (applied.ok()) {
      parts_->config.tenants.at(name).policy->config = tenant->second.policy->config;
    } else if (reloaded.ok()) {
      reloaded = applied.WithContext("tenant " + name);
    }
  }
  // Sources change too: their schemas are described again.
  if (parts_->describer) parts_->describer->Refresh();
  return reloaded;
}

namespace {

// The API listener's options from the configuration.
HttpServerOptions ServerOptions(const KernelConfig& cfg) {
  HttpServerOptions options;
  options.address = cfg.server.listen_address;
  options.port = cfg.server.port;
  options.body_limit = cfg.server.body_limit_bytes;
  options.max_header_count = cfg.server.max_header_count;
  options.read_timeout = std::chrono::milliseconds(cfg.server.read_timeout_ms);
  options.max_connections = static_cast<size_t>(cfg.server.max_connections);
  options.max_preauth_connections = static_cast<size_t>(cfg.server.max_preauth_connections);
  options.max_preauth_connections_per_address =
      static_cast<size_t>(cfg.server.max_preauth_connections_per_address);
  options.preauth_timeout = std::chrono::milliseconds(cfg.server.preauth_timeout_ms);
  options.io_threads = cfg.server.io_threads;
  options.handler_threads = cfg.server.handler_threads;
  if (!cfg.server.tls_certificate_file.empty()) {
    TlsOptions tls;
    tls.certificate_file = cfg.server.tls_certificate_file;
    tls.private_key_file = cfg.server.tls_private_key_file;
    tls.client_ca_file = cfg.server.tls_client_ca_file;
    options.tls = tls;
  }
  return options;
}

// How other replicas and operators reach this kernel's API: the listen
// address (this host's name for a wildcard) and the bound port.
std::string ApiUrl(const KernelConfig& cfg, uint16_t port) {
  std::string host = cfg.server.listen_address;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    host = ::gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  } else if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  const char* scheme = cfg.server.tls_certificate_file.empty() ? "http" : "https";
  return std::string(scheme) + "://" + host + ":" + std::to_string(port);
}

// GET /v1/cluster: every replica that beat on the shared state store. A
// replica is "live" while its lease holds (its last beat is younger than
// the lease TTL, the store's clock on both sides), "stale" after that.
Result<json> ClusterJson(StateStore& store, const std::string& store_description,
                         const ReplicaHeartbeater& self) {
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<ReplicaStatus> replicas, store.ListReplicas());
  const int64_t interval_ms = self.interval().count();
  const int64_t stale_after_us = self.lease_ttl().count() * 1000;
  json list = json::array();
  for (const ReplicaStatus& r : replicas) {
    const int64_t age_us = std::max<int64_t>(0, r.now_us - r.last_heartbeat_us);
    list.push_back({{"id", r.replica_id},
                    {"version", r.version},
                    {"api_url", r.api_url},
                    {"started_at_us", r.started_at_us},
                    {"last_heartbeat_us", r.last_heartbeat_us},
                    {"heartbeat_age_ms", age_us / 1000},
                    {"lease_epoch", r.lease_epoch},
                    {"status", age_us < stale_after_us ? "live" : "stale"},
                    {"self", r.replica_id == self.replica_id()}});
  }
  return json{{"replica", self.replica_id()},
              {"state_store", store_description},
              {"heartbeat_interval_ms", interval_ms},
              {"lease_ttl_ms", self.lease_ttl().count()},
              {"replicas", std::move(list)}};
}

// Lets the kernel-side plugins of `cfg` resolve the secret references of
// their own configurations (and only those).
void AllowKernelSecrets(const KernelConfig& cfg, KernelHostCallbacks& callbacks) {
  for (const auto& ref : cfg.identity) callbacks.AllowSecretsOf(ref.config);
  for (const PluginRef* ref : {&cfg.policy, &cfg.isolator, &cfg.tunnel}) {
    callbacks.AllowSecretsOf(ref->config);
  }
  for (const auto& [name, tenant] : cfg.tenants) {
    if (tenant.policy) callbacks.AllowSecretsOf(tenant.policy->config);
  }
  for (const auto& [name, entry] : cfg.notifications.notifiers) {
    callbacks.AllowSecretsOf(entry.plugin.config);
  }
}

}  // namespace

Result<ConfigCheckReport> KernelApp::Check(const KernelConfig& config) {
  // The host table a serving kernel gives its plugins, without the audit log
  // (nothing is opened for a check).
  KernelHostCallbacks callbacks;
  AllowKernelSecrets(config, callbacks);
  HostServicesTable services(callbacks);
  ConfigCheckReport report;
  {
    PluginLoader loader(services.get());
    AIRLOCK_ASSIGN_OR_RETURN(PluginSet set, LoadPluginSet(config, loader, PluginSetMode::kCheck,
                                                          callbacks.EnclaveExecutable()));
    report.plugins = std::move(set.manifests);
    report.notes = std::move(set.notes);
  }
  if (const HttpServerOptions options = ServerOptions(config); options.tls) {
    AIRLOCK_RETURN_IF_ERROR(CheckTlsOptions(*options.tls).WithContext("server.tls"));
  }
  AIRLOCK_ASSIGN_OR_RETURN(const std::string store, CheckConfiguredStateStore(config));
  if (config.state.backend == StateBackend::kPostgres) {
    report.notes.push_back(
        "state store " + store +
        (config.audit.backend == AuditBackend::kPostgres
             ? " (and the audit chain, audit.backend postgres)"
             : "") +
        ": not connected by check-config (serve and `airlockd state migrate` connect)");
  }
  return report;
}

// The peer link (state.peer): the client that forwards to other replicas,
// the endpoints that serve their requests here, and the secret they present.
// audit.export: each destination's Authorization resolved here (never
// logged), its sender started from its cursor: a file of this kernel's, or
// beside a chain shared in PostgreSQL a row the replicas take turns holding.
Status KernelApp::StartAuditExport(const KernelConfig& cfg, const std::string& instance_id,
                                   Parts& p) {
  if (cfg.audit.exports.empty()) return Status::Ok();
  std::vector<Secret> authorizations;
  for (const AuditExportConfig& destination : cfg.audit.exports) {
    if (destination.authorization.empty()) {
      authorizations.emplace_back();
      continue;
    }
    auto value = plugin_host::ResolveSecretReference(destination.authorization);
    if (!value.ok()) {
      return value.status().WithContext("audit.export " + destination.name + ": authorization");
    }
    authorizations.push_back(std::move(value).value());
  }
  std::unique_ptr<ExportCursors> cursors;
  if (cfg.audit.backend == AuditBackend::kPostgres) {
    AIRLOCK_ASSIGN_OR_RETURN(PostgresConnection shared, ConfiguredPostgresConnection(cfg));
    // A holder that died is replaced once its hold runs out; a live one
    // keeps it through its slowest delivery (it renews between batches).
    int64_t hold_ms = cfg.state.lease_ttl_ms;
    for (const AuditExportConfig& destination : cfg.audit.exports) {
      hold_ms = std::max(hold_ms, 3 * destination.timeout_ms);
    }
    AIRLOCK_ASSIGN_OR_RETURN(
        cursors, PostgresExportCursors(shared.dsn, PostgresAuditOptionsFor(shared), instance_id,
                                       std::chrono::milliseconds(hold_ms)));
  } else {
    const std::string state_dir = std::filesystem::path(cfg.state_path).parent_path().string();
    AIRLOCK_ASSIGN_OR_RETURN(cursors, FileExportCursors(state_dir + "/audit-export"));
  }
  auto exporter = AuditExporter::Start(cfg.audit.exports, std::move(authorizations),
                                       std::move(cursors), p.audit, &p.metrics);
  if (!exporter.ok()) return exporter.status().WithContext("starting the audit export");
  p.exporter = std::move(exporter).value();
  for (const AuditExportConfig& destination : cfg.audit.exports) {
    spdlog::info("audit export {}: streaming to {}", destination.name, destination.url);
  }
  return Status::Ok();
}

// Live events between replicas: what this one publishes goes to the others
// (NOTIFY on the shared database), and what they publish is published here,
// so a watcher of GET /v1/events sees every replica's transitions.
Status KernelApp::StartEventRelay(const KernelConfig& cfg, const std::string& instance_id,
                                  Parts& p) {
  AIRLOCK_ASSIGN_OR_RETURN(PostgresConnection shared, ConfiguredPostgresConnection(cfg));
  PostgresChannelOptions options;
  options.channel = "airlock_request_events";
  options.sender = instance_id;
  options.tls = shared.tls;
  options.connect_timeout_seconds = shared.connect_timeout_seconds;
  EventHub* hub = &p.events;
  auto channel =
      PostgresChannel::Open(shared.dsn, std::move(options), [hub](std::string_view payload) {
        if (auto event = DecodeRelayedEvent(payload)) {
          hub->PublishRelayed(std::move(event->request_id), std::move(event->event),
                              std::move(event->state), event->version);
        }
      });
  if (!channel.ok()) return channel.status().WithContext("relaying live events between replicas");
  p.event_channel = std::move(channel).value();
  PostgresChannel* relay = p.event_channel.get();
  p.events.set_relay([relay](const HubEvent& event) { relay->Send(EncodeRelayedEvent(event)); });
  return Status::Ok();
}

Status KernelApp::StartPeerLink(const KernelConfig& cfg, const std::string& instance_id, Parts& p) {
  auto secret = plugin_host::ResolveSecretReference(cfg.state.peer_secret);
  if (!secret.ok()) return secret.status().WithContext("state.peer.secret");
  if (secret->Reveal().size() < 16) {
    return Status::InvalidArgument(
        "state.peer.secret: the peer secret must be at least 16 bytes (32 random bytes, "
        "hex-encoded, is a good one)");
  }
  p.peer_secret = std::make_shared<const Secret>(std::string(secret->Reveal()));
  PeerClientOptions options;
  options.secret = std::move(secret).value();
  options.ca_file = cfg.state.peer_ca_file;
  options.self = instance_id;
  auto peer = PeerClient::Create(std::move(options));
  if (!peer.ok()) return peer.status();
  p.peer = std::move(peer).value();
  ForwardedEndpoints::Dependencies forwarding;
  forwarding.tunnel = p.tunnel.get();
  forwarding.peer = p.peer.get();
  forwarding.audit = p.audit;
  forwarding.transport = cfg.tunnel.name;
  forwarding.query_timeout = std::chrono::milliseconds(cfg.limits.query_timeout_ms);
  p.forwarded = std::make_unique<ForwardedEndpoints>(std::move(forwarding));
  return Status::Ok();
}

Result<std::unique_ptr<KernelApp>> KernelApp::Start(KernelConfig config) {
  std::unique_ptr<KernelApp> app(new KernelApp());
  Parts& p = *app->parts_;
  p.config = std::move(config);
  const KernelConfig& cfg = p.config;

  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(cfg.audit_path).parent_path(), ec);

  auto audit = OpenKernelAuditTrail(cfg);
  if (!audit.ok()) return audit.status().WithContext("opening the audit log");
  p.audit_trail = std::move(audit).value();
  p.audit = p.audit_trail->log();
  p.callbacks.set_audit(p.audit);
  {
    std::map<std::string, std::string> connector_of;
    for (const auto& dataset : cfg.datasets) connector_of[dataset.name] = dataset.connector;
    p.audit_metrics = std::make_unique<AuditMetrics>(&p.metrics, std::move(connector_of));
    p.audit_metrics->Observe(p.audit);
  }
  // SQLite holds a lock on its file (one kernel per state directory);
  // PostgreSQL is shared by every replica, and keeps no request text in
  // memory that another replica could make stale.
  auto store = OpenConfiguredStateStore(cfg);
  if (!store.ok()) return store.status().WithContext("opening the state store");
  spdlog::info("state store: {}", store->description);
  p.store = std::move(store->store);
  p.store_description = std::move(store->description);
  p.tenancy = std::make_unique<Tenancy>(p.config);
  p.tenant_tagger = std::make_unique<TenantAuditTagger>(
      p.tenancy.get(),
      [store = p.store.get()](const std::string& id) -> std::optional<std::string> {
        auto loaded = store->LoadText(id);
        if (!loaded.ok() || *loaded == nullptr) return std::nullopt;
        return Tenancy::RequesterTenant((*loaded)->requester);
      },
      p.audit);

  AllowKernelSecrets(cfg, p.callbacks);
  p.services = std::make_unique<HostServicesTable>(p.callbacks);
  p.loader = std::make_unique<PluginLoader>(p.services->get());
  // The isolator scopes what it starts (and reaps) to this kernel: it gets a
  // directory of its own and the instance identity. The state store's lock,
  // held from here on, keeps a second kernel off this state directory.
  const std::string state_dir = std::filesystem::path(cfg.state_path).parent_path().string();
  AIRLOCK_ASSIGN_OR_RETURN(const std::string instance_id, LoadInstanceId(state_dir));
  spdlog::info("kernel instance {} (state directory {})", instance_id, state_dir);
  AIRLOCK_RETURN_IF_ERROR(StartAuditExport(cfg, instance_id, p));
  KernelConfig plugin_cfg = cfg;
  AnnotateIsolatorConfig(plugin_cfg.isolator.config, state_dir, instance_id);
  AIRLOCK_ASSIGN_OR_RETURN(
      PluginSet set,
      LoadPluginSet(plugin_cfg, *p.loader, PluginSetMode::kServe, p.callbacks.EnclaveExecutable()));
  for (const auto& note : set.notes) spdlog::warn("{}", note);
  p.identity = std::make_unique<IdentityChain>(std::move(set.identity));
  p.policy = std::move(set.policy);
  p.tenant_policies = std::move(set.tenant_policies);
  p.isolator = std::move(set.isolator);
  p.tunnel = std::move(set.tunnel);
  p.notifiers = std::move(set.notifiers);
  json plugins = std::move(set.manifests);

  if (cfg.agents.enabled) {
    // Replicas keep one enrollment book in their database: an agent enrolls
    // once and links with any of them.
    std::unique_ptr<agent::EnrollmentBook> book;
    if (cfg.state.backend == StateBackend::kPostgres) {
      AIRLOCK_ASSIGN_OR_RETURN(PostgresConnection shared, ConfiguredPostgresConnection(cfg));
      agent::PostgresBookOptions options;
      options.tls = shared.tls;
      options.connect_timeout_seconds = shared.connect_timeout_seconds;
      AIRLOCK_ASSIGN_OR_RETURN(book, agent::OpenPostgresEnrollmentBook(shared.dsn, options));
      // A one-machine kernel turned replica keeps its agents enrolled.
      auto imported = agent::ImportEnrollmentFile(cfg.agents.state_dir, *book);
      if (!imported.ok()) return imported.status().WithContext("importing agent enrollments");
      if (!imported->empty()) {
        spdlog::info("agent enrollments of {} imported into {}", cfg.agents.state_dir,
                     book->Describe());
        AIRLOCK_RETURN_IF_ERROR(p.audit->Append({{"event", "agent.enrollments_imported"},
                                                 {"agents", *imported},
                                                 {"into", book->Describe()}}));
      }
    }
    std::set<std::string> configured;
    for (const DatasetInfo& d : cfg.datasets) configured.insert(d.name);
    p.sites = std::make_unique<SiteCatalog>(std::move(configured), p.store.get());
    // The sites' datasets as they last said, before they link again.
    if (Status loaded = p.sites->Refresh(); !loaded.ok()) {
      return loaded.WithContext("loading the sites' catalogs");
    }
    auto agents = agent::AgentRegistry::Start(cfg.agents, p.audit, std::move(book), p.sites.get());
    if (!agents.ok()) return agents.status().WithContext("starting the agent listener");
    p.agents = std::move(agents).value();
  }

  // The lease comes before recovery: a restart fences whatever an earlier
  // incarnation of this replica might still be doing. Its API URL is known
  // once the server listens.
  ReplicaHeartbeat beat;
  beat.replica_id = instance_id;
  beat.version = AIRLOCK_VERSION;
  beat.started_at_us = WallMicros();
  ReplicaHeartbeater::Options lease;
  lease.interval = std::chrono::milliseconds(cfg.state.heartbeat_interval_ms);
  lease.lease_ttl = std::chrono::milliseconds(cfg.state.lease_ttl_ms);
  Parts* parts = &p;
  lease.on_lease_lost = [parts](const Status& why) {
    // Another replica serves this one's requests now. Nothing more is
    // answered from its enclaves (LeaseHeld is false from here on); the
    // process stops, and its supervisor starts it again as a new replica.
    spdlog::critical("{}; stopping", why.message());
    parts->lease_lost.store(true);
    ::kill(::getpid(), SIGTERM);
  };
  auto heartbeat = ReplicaHeartbeater::Start(p.store.get(), std::move(beat), std::move(lease));
  if (!heartbeat.ok()) return heartbeat.status().WithContext("acquiring this replica's lease");
  p.heartbeat = std::move(heartbeat).value();
  p.heartbeat_view.store(p.heartbeat.get(), std::memory_order_release);

  if (cfg.state.backend == StateBackend::kPostgres) {
    AIRLOCK_RETURN_IF_ERROR(StartEventRelay(cfg, instance_id, p));
  }

  RequestManager::Dependencies deps;
  deps.config = &p.config;
  deps.store = p.store.get();
  deps.audit = p.audit;
  deps.policy = p.policy.get();
  for (const auto& [tenant, policy] : p.tenant_policies) {
    deps.tenant_policies.emplace(tenant, policy.get());
  }
  deps.isolator = p.isolator.get();
  deps.tunnel = p.tunnel.get();
  deps.metrics = &p.metrics;
  deps.remote = p.agents.get();
  deps.sites = p.sites.get();
  deps.events = &p.events;
  if (!p.notifiers.empty()) {
    p.composer = std::make_unique<NotificationComposer>(cfg.notifications);
    OutboxDispatcherOptions delivery;
    delivery.claimer = instance_id;
    delivery.max_attempts = cfg.notifications.max_attempts;
    delivery.initial_backoff_ms = cfg.notifications.initial_backoff_ms;
    delivery.max_backoff_ms = cfg.notifications.max_backoff_ms;
    delivery.retention_seconds = cfg.notifications.retention_seconds;
    OutboxDispatcher::Notifiers notifiers;
    for (const auto& [name, plugin] : p.notifiers) notifiers.emplace(name, plugin.get());
    p.dispatcher =
        std::make_unique<OutboxDispatcher>(p.store.get(), p.audit, &p.metrics, std::move(notifiers),
                                           std::move(delivery), [] { return WallMicros(); });
    NotificationComposer* composer = p.composer.get();
    OutboxDispatcher* dispatcher = p.dispatcher.get();
    deps.notifications.compose = [composer](const RequestRecord& record, RequestState from,
                                            const std::optional<std::string>& actor) {
      return composer->ForTransition(record, from, actor);
    };
    deps.notifications.compose_event = [composer](const RequestRecord& record,
                                                  const std::string& event,
                                                  const std::optional<std::string>& actor) {
      return composer->ForEvent(record, event, actor);
    };
    deps.notifications.queued = [dispatcher] { dispatcher->Wake(); };
  }
  if (cfg.state.backend == StateBackend::kPostgres) {
    RequestManager::Dependencies::Replication replication;
    replication.replica_id = instance_id;
    ReplicaHeartbeater* keeper = p.heartbeat.get();
    replication.lease_held = [keeper] { return keeper->LeaseHeld(); };
    replication.may_fence = [keeper] { return keeper->SteadyForATtl(); };
    replication.lease_ttl_us = cfg.state.lease_ttl_ms * 1000;
    replication.scan_interval_us = cfg.state.heartbeat_interval_ms * 1000;
    if (cfg.state.peer_enabled) {
      AIRLOCK_RETURN_IF_ERROR(StartPeerLink(cfg, instance_id, p));
      replication.peer = p.peer.get();
      replication.forwarded = p.forwarded.get();
    }
    deps.replication = std::move(replication);
  }
  p.requests = std::make_unique<RequestManager>(std::move(deps));
  // Gauges read at every scrape: the process, SQLite, and the bounded caches
  // whose filling shows in the process's memory.
  p.metrics.AddCollector(RefreshProcessGauges);
  p.metrics.AddCollector([audit = p.audit, requests = p.requests.get(),
                          store = p.store.get()](Metrics& m) {
    m.Get("airlock_audit_queue_records", "Audit records waiting to be committed", "gauge")
        .Set(static_cast<int64_t>(audit->queued_records()));
    if (auto outbox = store->CountOutbox(""); outbox.ok()) {
      m.Get("airlock_notifications_pending", "Notifications queued and not yet delivered", "gauge")
          .Set(outbox->pending);
    }
    const EnclaveMemory enclaves = requests->enclave_memory();
    m.Get("airlock_enclave_data_bytes",
          "Bytes the live enclaves' in-memory data takes, as each last reported", "gauge")
        .Set(enclaves.data_bytes);
    m.Get("airlock_enclave_resident_bytes",
          "Resident memory of the live enclaves in processes of their own, as each last reported",
          "gauge")
        .Set(enclaves.resident_bytes);
    m.Get("airlock_audit_index_requests",
          "Requests whose audit records' places are kept in memory (bounded)", "gauge")
        .Set(static_cast<int64_t>(audit->indexed_requests()));
    m.Get("airlock_request_view_cache_entries",
          "Rendered request views kept for GET /v1/requests/{id} (bounded)", "gauge")
        .Set(static_cast<int64_t>(requests->cached_views()));
  });
  if (p.sites) {
    // Each configured site: what it owns, how fresh that is, and whether an
    // admin has it suspended (what a dashboard alarms on).
    std::vector<std::string> site_names;
    for (const auto& [name, entry] : cfg.agents.agents) site_names.push_back(name);
    p.metrics.AddCollector([sites = p.sites.get(), store = p.store.get(), site_names](Metrics& m) {
      std::map<std::string, int64_t> owned, newest_us;
      for (const SiteDataset& d : sites->All()) {
        ++owned[d.agent];
        newest_us[d.agent] = std::max(newest_us[d.agent], d.received_at_us);
      }
      auto suspended = store->ListSiteSuspensions();
      const int64_t now_us = WallMicros();
      for (const std::string& site : site_names) {
        const std::string label = "site=\"" + site + "\"";
        m.Get("airlock_site_datasets", "Datasets each site owns, as it last said", "gauge", label)
            .Set(owned[site]);
        if (auto at = newest_us.find(site); at != newest_us.end()) {
          m.Get("airlock_site_catalog_age_seconds",
                "Seconds since a site's last catalog sync reached the kernel", "gauge", label)
              .Set((now_us - at->second) / 1000000);
        }
        if (suspended.ok()) {
          m.Get("airlock_site_suspended", "1 while an admin has the site suspended", "gauge", label)
              .Set(FindSuspension(*suspended, site) != nullptr ? 1 : 0);
        }
      }
    });
  }
  p.streamer = std::make_unique<EventStreamer>(&p.events, p.requests.get(), &p.metrics);
  AIRLOCK_RETURN_IF_ERROR(p.requests->Recover().WithContext("recovering requests"));
  p.requests->Start();
  // What an earlier run queued and did not deliver goes out now.
  if (p.dispatcher) p.dispatcher->Start();

  V1Api::Dependencies api;
  api.requests = p.requests.get();
  api.identity = p.identity.get();
  api.audit = p.audit;
  api.metrics = &p.metrics;
  p.catalog = std::make_shared<CatalogDocument>(cfg);
  api.catalog = [catalog = p.catalog, requests = p.requests.get(),
                 tenancy = p.tenancy.get()](const Principal& caller) {
    return tenancy->VisibleCatalog(caller, requests->MarkCatalogSites(catalog->Get()));
  };
  api.tenancy = p.tenancy.get();
  if (cfg.catalog.describe) {
    RequestManager* requests = p.requests.get();
    p.describer = std::make_unique<CatalogDescriber>(
        [requests](std::chrono::milliseconds timeout, const std::atomic<bool>* stop) {
          return requests->DescribeDatasets(timeout, stop);
        },
        p.catalog.get(), p.audit, std::chrono::milliseconds(cfg.catalog.describe_timeout_ms));
    p.describer->Refresh();
  }
  api.plugins = {{"plugins", plugins}};
  api.openapi = std::string(kOpenApiDocument);
  api.admin_groups = cfg.admin_groups;
  KernelApp* self = app.get();
  api.reload_policy = [self] { return self->ReloadPolicy(); };
  if (p.agents) {
    agent::AgentRegistry* agents = p.agents.get();
    api.agents = [agents] { return agents->StatusJson(); };
  }
  api.state_health = [parts] {
    ReplicaHeartbeater* beat = parts->heartbeat_view.load(std::memory_order_acquire);
    return beat != nullptr ? beat->health() : Status::Ok();
  };
  api.peer_secret = p.peer_secret;
  api.events = p.streamer.get();
  if (cfg.console.oidc) {
    const ConsoleConfig::Oidc& oidc = *cfg.console.oidc;
    api.console_config = {
        {"oidc",
         {{"issuer", oidc.issuer}, {"client_id", oidc.client_id}, {"scopes", oidc.scopes}}}};
    if (!oidc.cli_client_id.empty())
      api.console_config["oidc"]["cli_client_id"] = oidc.cli_client_id;
    // The issuer's origin: scheme, host and port, without its path.
    const size_t path = oidc.issuer.find('/', std::string("https://").size());
    api.console_policy = ConsolePolicyWith(oidc.issuer.substr(0, path));
  }
  api.cluster = [parts]() -> Result<json> {
    ReplicaHeartbeater* beat = parts->heartbeat_view.load(std::memory_order_acquire);
    if (beat == nullptr) return Status::Unavailable("the kernel is starting");
    return ClusterJson(*parts->store, parts->store_description, *beat);
  };
  mcp::McpServerOptions mcp_options;
  mcp_options.requests = p.requests.get();
  mcp_options.audit = p.audit;
  mcp_options.events = &p.events;
  mcp_options.catalog = api.catalog;
  mcp_options.public_url = cfg.mcp.public_url;
  mcp_options.authorization_servers = cfg.mcp.authorization_servers;
  mcp_options.max_rows = static_cast<size_t>(cfg.mcp.max_rows);
  mcp_options.server_version = AIRLOCK_VERSION;
  p.mcp = std::make_unique<mcp::McpServer>(std::move(mcp_options));
  api.mcp = p.mcp.get();
  p.api = std::make_unique<V1Api>(std::move(api));

  HttpServerOptions options = ServerOptions(cfg);
  {
    const std::string help =
        "HTTP API connections closed by the connection budget: idle unauthenticated ones shed "
        "to make room, new ones refused when nothing could be shed";
    Metrics::Counter& shed = p.metrics.Get("airlock_http_connections_limited_total", help,
                                           "counter", "outcome=\"shed\"");
    Metrics::Counter& refused = p.metrics.Get("airlock_http_connections_limited_total", help,
                                              "counter", "outcome=\"refused\"");
    options.on_connection_limited = [&shed, &refused](ConnectionLimitEvent event) {
      (event == ConnectionLimitEvent::kShed ? shed : refused).Add();
    };
  }
  if (cfg.agents.on_api_port && p.agents) {
    // Agents reach the API's port too: their ClientHello offers the link's
    // ALPN protocol, and the registry takes such a connection as it is.
    agent::AgentRegistry* agents = p.agents.get();
    options.handoff_alpn = std::string(agent::kLinkAlpn);
    options.handoff = [agents](int fd) { agents->Adopt(fd); };
  }
  V1Api* handler = p.api.get();
  auto server =
      HttpServer::Start(options, [handler](const HttpRequest& r) { return handler->Handle(r); });
  if (!server.ok()) return server.status().WithContext("starting the HTTP server");
  p.server = std::move(server).value();
  p.heartbeat->SetApiUrl(cfg.state.peer_url.empty() ? ApiUrl(cfg, p.server->port())
                                                    : cfg.state.peer_url);
  (void)p.audit->Append({{"event", "kernel.started"},
                         {"replica", instance_id},
                         {"port", p.server->port()},
                         {"isolator", cfg.isolator.name},
                         {"tunnel", cfg.tunnel.name}});
  return app;
}

}  // namespace airlock
