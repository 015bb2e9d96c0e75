// Kernel configuration: one JSON document, validated completely at start.
// Every error names the key path ("server.port must be an integer 0..65535").
// Relative paths are resolved against the configuration file's directory.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock {

struct ServerConfig {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 8080;
  std::string tls_certificate_file;  // empty: plain HTTP
  std::string tls_private_key_file;
  std::string tls_client_ca_file;  // request client certificates (mTLS identity)
  size_t body_limit_bytes = 1 << 20;
  size_t max_header_count = 64;
  int64_t read_timeout_ms = 15000;
  // The connection budget (HttpServerOptions): every open connection, those
  // that have not authenticated yet, and those per client address.
  int64_t max_connections = 4096;
  int64_t max_preauth_connections = 1024;
  int64_t max_preauth_connections_per_address = 256;
  // TLS handshake and request header of a connection not yet authenticated.
  int64_t preauth_timeout_ms = 5000;
  int io_threads = 2;
  // Handlers wait while their commits are made durable, so this bounds the
  // requests in flight and with them how many share one group commit.
  int handler_threads = 32;
};

// One plugin reference: which shared object, its pin and its configuration.
struct PluginRef {
  std::string name;  // instance name used in logs and /v1/plugins
  std::string path;  // absolute after loading the configuration
  std::optional<std::string> sha256;
  nlohmann::json config = nlohmann::json::object();
  // Connectors only: the source endpoints ("host:port") an enclave pulling
  // through this connector may reach (egress_forwarder.h). The host is a
  // DNS name or a 127.x.y.z literal.
  std::vector<std::string> egress;
  // Connectors only: further host paths an enclave pulling through this
  // connector must read (absolute after loading), beyond the plugin file and
  // the paths its configuration names (EnclaveSupervisor::ApprovedReadPaths).
  std::vector<std::string> read_paths;
  // Connectors only: the agent (AgentsConfig::agents) whose host runs the
  // enclaves of requests for this connector's datasets; empty: this kernel's
  // own isolator does.
  std::string agent;
};

// One agent the kernel accepts links from (kernel/agent/).
struct AgentEntry {
  std::string name;
  // SHA-256 (hex) of the one-time enrollment token; the token itself is never stored.
  std::string enrollment_token_sha256;
  // The tenant the site belongs to (required when tenants are configured):
  // its datasets, its enclaves and its suspension are that tenant's.
  std::string tenant;
};

// The listener outbound-only agents dial, and the CA that certifies them.
struct AgentsConfig {
  bool enabled = false;  // true when the "agents" section is present
  std::string listen_address = "127.0.0.1";
  uint16_t port = 7443;
  // DNS names / IP addresses the kernel's link certificate carries; agents
  // verify the one they dial. Default: listen_address.
  std::vector<std::string> server_names;
  std::string state_dir;  // enrollments (one kernel); default <state_dir>/agents
  // The agent CA's ca.key and ca.crt; default state_dir. Replicas must all
  // use the same CA (a directory each mounts, or copies of the two files).
  std::string ca_dir;
  int64_t certificate_lifetime_seconds = 86400;
  int64_t heartbeat_interval_ms = 5000;
  int64_t offline_after_ms = 15000;
  int64_t provision_timeout_ms = 60000;
  // Agents may also dial the HTTPS API's port (server.tls required): a
  // connection offering the link's ALPN protocol goes to the agents, any
  // other to the API, so one port (443) passes firewalls for both.
  bool on_api_port = false;
  std::map<std::string, AgentEntry> agents;  // by name
};

// One tenant (KernelConfig::tenants): an organisation sharing the kernel
// that never sees another's requests, datasets, sites or audit records.
struct TenantConfig {
  std::string name;  // [a-z0-9][a-z0-9_-]*, at most 63 bytes
  // Who belongs to it when the identity provider does not say (the
  // principal's "tenant" claim, or a static token's tenant, wins): these
  // subjects and the members of these groups.
  std::vector<std::string> subjects;
  std::vector<std::string> groups;
  // Its admins: they see and act on everything of this tenant, and only that.
  std::vector<std::string> admin_groups;
  // Its own policy, deciding its members' asks; none: the kernel's `policy`.
  std::optional<PluginRef> policy;
};

// A tenant name: [a-z0-9][a-z0-9_-]*, 1..63 bytes.
bool IsTenantName(const std::string& name);

struct LimitsConfig {
  int64_t max_window_seconds = 86400;
  int64_t default_window_seconds = 3600;
  int64_t approval_timeout_seconds = 86400;
  int64_t query_timeout_ms = 30000;
  int64_t max_result_rows = 1000000;
  int64_t enclave_memory_bytes = int64_t{2} << 30;
  int64_t max_datasets_per_request = 32;
  int64_t provision_timeout_ms = 600000;
  int64_t job_results_retention_seconds = 86400;
  int64_t max_job_result_bytes = int64_t{1} << 30;
  // How far ahead a request may schedule its window's start (not_before).
  int64_t max_schedule_ahead_seconds = 30 * 86400;
};

// Signed audit checkpoints (kernel/audit/checkpointer.h).
struct AuditCheckpointConfig {
  bool enabled = false;  // true when "audit.checkpoints" is present
  // Secret reference to the Ed25519 private key (PEM): "env:NAME" or
  // "file:/abs/path" (a relative file: path is made absolute against the
  // configuration's directory). Never inside the state directory.
  std::string signing_key;
  // PEM public keys (absolute paths) of earlier signing keys whose
  // checkpoints stay trusted after a key rotation.
  std::vector<std::string> previous_public_keys;
  int64_t every_records = 10000;
  int64_t every_seconds = 60;
  bool syslog = true;  // ship checkpoints to syslog(3) too
};

// Where the audit chain lives: the file at audit_path (one kernel), or the
// state store's PostgreSQL database (one chain for every replica).
enum class AuditBackend { kFile, kPostgres };

// One destination the audit is streamed to (audit.export[]): every record,
// in order, at least once, from a durable cursor (kernel/core/audit_exporter.h).
struct AuditExportConfig {
  std::string name;  // [a-z0-9_-], names its cursor file and metrics
  // "https": JSON lines POSTed in batches; "syslog": RFC 5424 messages over
  // TLS (RFC 5425, kernel/core/syslog_tls.h).
  std::string type = "https";
  std::string url;  // https:// (http:// only with allow_plaintext_http); syslog: tls://host[:port]
  bool allow_plaintext_http = false;
  std::string ca_file;  // verifies the receiver (empty: system CAs)
  // Secret reference (env:/file:) to the Authorization header's value.
  std::string authorization;
  int64_t batch_records = 500;
  int64_t max_backoff_ms = 30000;
  int64_t timeout_ms = 10000;
  // Records not yet delivered beyond this are logged as an alarm (the
  // backlog is the audit log itself, bounded by its disk).
  int64_t lag_alarm_records = 100000;
};

struct AuditConfig {
  // Default: postgres when state.backend is postgres, else file.
  AuditBackend backend = AuditBackend::kFile;
  AuditCheckpointConfig checkpoints;
  std::vector<AuditExportConfig> exports;
};

// Where the kernel keeps its request state (kernel/state/).
enum class StateBackend { kSqlite, kPostgres };

struct StateConfig {
  StateBackend backend = StateBackend::kSqlite;  // SQLite: <state_dir>/state.db
  // PostgreSQL only. A secret reference (env:NAME or file:/path) to the
  // libpq connection string; resolved by the kernel when it opens the store,
  // never logged.
  std::string dsn_secret;
  // PostgreSQL only: TLS over what the connection string says. Empty mode:
  // as the connection string says.
  std::string tls_mode;  // require | verify-ca | verify-full
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  int64_t read_connections = 4;
  int64_t connect_timeout_seconds = 5;
  // How often this replica records its heartbeat (GET /v1/cluster, /healthz)
  // and renews its lease.
  int64_t heartbeat_interval_ms = 1000;
  // How long a lease holds without renewal: a replica silent for this long
  // is fenced and its requests are taken over by a survivor; a replica that
  // could not renew for this long stops serving its enclaves on its own.
  int64_t lease_ttl_ms = 3000;
  // PostgreSQL only, optional ("state.peer"): the link between replicas, so
  // that any replica answers for a request another one serves (tunnel
  // queries, schema browsing and the credential are forwarded to it).
  // Without it such calls are answered with where the request is served.
  bool peer_enabled = false;
  std::string peer_secret;   // secret reference to the token replicas share
  std::string peer_ca_file;  // verifies other replicas' HTTPS (empty: system CAs)
  std::string peer_url;      // this replica's API URL for the others (empty: derived)
};

// One notifier instance (a plugin of kind notifier) and what it is told.
struct NotifierEntry {
  PluginRef plugin;
  // Events it is told of ("request.pending_approval", ...); every event
  // when empty. See kNotificationEvents.
  std::vector<std::string> events;
  // Whose notifications it carries: "approvers" (someone waits for them),
  // "requester" (what became of their request); both when empty.
  std::vector<std::string> audiences;
  // Whose requests it tells of: these tenants', or every tenant's ("*").
  // Required when tenants are configured, so that no notifier carries one
  // tenant's requests to another's channel by being left unsaid; empty
  // (every request) only without tenants.
  std::vector<std::string> tenants;
};

// Longest notifier instance name (it is part of every notification's id).
inline constexpr size_t kMaxNotifierNameBytes = 64;

// The events a notifier may be told of, in lifecycle order.
inline const std::vector<std::string> kNotificationEvents = {
    "request.pending_approval", "request.approved",
    "request.denied",           "request.ready",
    "request.expiring",         "request.expired",
    "request.closed",           "request.failed",
    "request.cancelled",        "request.extension_requested",
    "request.extended",         "request.extension_denied"};

// The web console (/console/). With `oidc` set it offers to sign in with that
// OpenID Connect provider (authorization-code flow with PKCE, as a public
// client); the ID token it gets must be one the identity chain accepts (the
// oidc-jwt plugin trusting the same issuer with `client_id` as audience).
struct ConsoleConfig {
  struct Oidc {
    std::string issuer;     // https://...
    std::string client_id;  // the console's client at the provider
    // The CLI's client at the provider (`airlock login --sso`): a public
    // native client with the redirect URI http://127.0.0.1/callback (any
    // port, RFC 8252). Empty: the CLI signs in with API tokens only.
    std::string cli_client_id;
    std::string scopes = "openid profile email";
  };
  std::optional<Oidc> oidc;
};

// The catalog's schemas (kernel/core/catalog_describer.h): the connectors
// describe their datasets in an enclave at start and at every reload.
struct CatalogConfig {
  bool describe = true;
  int64_t describe_timeout_ms = 120000;
};

// The MCP endpoint (/mcp, kernel/mcp/): for AI agents.
struct McpConfig {
  // This API's public base URL ("https://airlock.example.com"), naming the
  // protected resource in its OAuth metadata; empty: taken from the
  // request's Host header and the listener's scheme.
  std::string public_url;
  // Authorization servers named in the metadata; empty: the issuers the
  // identity plugins trust (their configurations' "issuer").
  std::vector<std::string> authorization_servers;
  // The most rows a `query` answer holds (a caller may ask for fewer).
  int64_t max_rows = 1000;
};

// Notifications (kernel/notify/): the outbox and how it is delivered.
struct NotificationsConfig {
  // The console's base URL for links in notifications (e.g.
  // "https://airlock.example.com"); no links when empty.
  std::string console_url;
  // Deliveries tried before a notification is abandoned (audited).
  int64_t max_attempts = 12;
  // Backoff between tries: doubles from initial to max, with jitter.
  int64_t initial_backoff_ms = 1000;
  int64_t max_backoff_ms = 300000;
  // How long before a window ends the requester is told it ends soon; 0: never.
  int64_t expiring_notice_seconds = 600;
  // How long delivered and abandoned notifications are kept.
  int64_t retention_seconds = 7 * 86400;
  std::map<std::string, NotifierEntry> notifiers;  // by instance name
};

struct KernelConfig {
  std::string source_path;  // the configuration file
  std::string config_dir;   // its directory
  ServerConfig server;
  StateConfig state;
  std::string state_path;  // SQLite state store (state.backend sqlite)
  std::string audit_path;  // hash-chained audit log
  AuditConfig audit;
  std::string results_dir;          // job results awaiting download
  std::string plugin_dir;           // base for relative plugin paths
  std::vector<PluginRef> identity;  // tried in order
  PluginRef policy;
  PluginRef isolator;
  PluginRef tunnel;
  std::map<std::string, PluginRef> connectors;  // instance name -> plugin
  std::vector<DatasetInfo> datasets;            // the catalog
  // Tenants by name; empty: one organisation, no tenant boundary.
  std::map<std::string, TenantConfig> tenants;
  // The tenant of each configured dataset (datasets[i].tenant), by dataset
  // name; empty without tenants.
  std::map<std::string, std::string> dataset_tenants;
  // The key columns declared for a configured dataset (datasets[i].key), by
  // dataset name: its enclave table is stored in that key's order, which
  // makes lookups and joins on it one b-tree search. Only datasets that
  // declare one appear.
  std::map<std::string, std::vector<std::string>> dataset_keys;
  // See every request and the audit; with tenants, the platform's admins,
  // who see every tenant.
  std::vector<std::string> admin_groups;
  std::vector<std::string> reviewer_groups;  // see every request (approvers)
  LimitsConfig limits;
  AgentsConfig agents;
  NotificationsConfig notifications;
  ConsoleConfig console;
  McpConfig mcp;
  CatalogConfig catalog;
  // Not read from the file: set by `airlockd serve
  // --accept-unverified-audit-history` for one start.
  bool accept_unverified_audit_history = false;
};

// A site's own sources, as an agent's configuration declares them: its
// "connectors" and "datasets", written as in the kernel's configuration
// (without "agent"), parsed and checked as the kernel parses its own.
struct SiteSources {
  std::map<std::string, PluginRef> connectors;  // by name
  std::vector<DatasetInfo> datasets;
  // The key columns a dataset declares (datasets[].key), by dataset name.
  std::map<std::string, std::vector<std::string>> keys;
};
// From `document`'s "connectors" and "datasets"; relative paths against
// `config_dir`, plugins against `plugin_dir`. Other keys are the caller's.
Result<SiteSources> ParseSiteSources(const nlohmann::json& document, const std::string& config_dir,
                                     const std::string& plugin_dir);

// A name usable as a dataset (a table in the enclave): [A-Za-z_][A-Za-z0-9_]*,
// at most 63 bytes.
bool IsSafeIdentifier(const std::string& name);

// The agent whose host must run an enclave for `datasets` ("" for this
// kernel's own isolator). InvalidArgument when the datasets' connectors are
// bound to different agents (or some to an agent and some not): one enclave
// runs on one host.
Result<std::string> AgentForDatasets(const KernelConfig& config,
                                     const std::vector<std::string>& datasets);

// Parses and validates `document`; `config_path` locates relative paths.
// `default_plugin_dir` is used when the document names none.
Result<KernelConfig> ParseKernelConfig(const nlohmann::json& document,
                                       const std::string& config_path,
                                       const std::string& default_plugin_dir);

// Reads, parses and validates the file at `path`.
Result<KernelConfig> LoadKernelConfig(const std::string& path,
                                      const std::string& default_plugin_dir);

}  // namespace airlock
