#include "kernel/core/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "airlock/cpp/batch.hpp"
#include "kernel/common/json_nesting.h"
#include "kernel/common/strict_json.h"

namespace airlock {
namespace {

// Deepest nesting of objects and arrays accepted in a configuration file or a
// plugin's config_file: real ones nest a few levels, and copying or
// serializing a document recurses once per level.
constexpr int kMaxConfigDepth = 64;

namespace fs = std::filesystem;
using nlohmann::json;

// Walks a JSON object, remembering the path for error messages and refusing
// keys nobody reads (a typo in a security configuration must not pass).
class Reader {
 public:
  Reader(const json& node, std::string path) : node_(node), path_(std::move(path)) {}

  Status ExpectObject() const {
    if (!node_.is_object()) return Status::InvalidArgument(Where() + " must be an object");
    return Status::Ok();
  }

  bool Has(const std::string& key) const { return node_.contains(key) && !node_[key].is_null(); }

  Status String(const std::string& key, std::string* out, bool required = false) {
    seen_.insert(key);
    if (!Has(key)) return Missing(key, required);
    if (!node_[key].is_string()) return Status::InvalidArgument(Key(key) + " must be a string");
    *out = node_[key].get<std::string>();
    return Status::Ok();
  }

  Status Int(const std::string& key, int64_t* out, int64_t min, int64_t max) {
    seen_.insert(key);
    if (!Has(key)) return Status::Ok();
    if (!node_[key].is_number_integer()) {
      return Status::InvalidArgument(Key(key) + " must be an integer");
    }
    const int64_t value = node_[key].get<int64_t>();
    if (value < min || value > max) {
      return Status::InvalidArgument(Key(key) + " must be between " + std::to_string(min) +
                                     " and " + std::to_string(max));
    }
    *out = value;
    return Status::Ok();
  }

  Status Bool(const std::string& key, bool* out) {
    seen_.insert(key);
    if (!Has(key)) return Status::Ok();
    if (!node_[key].is_boolean())
      return Status::InvalidArgument(Key(key) + " must be true or false");
    *out = node_[key].get<bool>();
    return Status::Ok();
  }

  Status StringList(const std::string& key, std::vector<std::string>* out) {
    seen_.insert(key);
    if (!Has(key)) return Status::Ok();
    if (!node_[key].is_array()) {
      return Status::InvalidArgument(Key(key) + " must be an array of strings");
    }
    out->clear();
    for (const auto& item : node_[key]) {
      if (!item.is_string()) {
        return Status::InvalidArgument(Key(key) + " must be an array of strings");
      }
      out->push_back(item.get<std::string>());
    }
    return Status::Ok();
  }

  // Marks `key` as read by the caller (it walks the value itself).
  const json* Child(const std::string& key) {
    seen_.insert(key);
    return Has(key) ? &node_[key] : nullptr;
  }

  Status RejectUnknownKeys() const {
    for (const auto& [key, value] : node_.items()) {
      if (!seen_.count(key)) return Status::InvalidArgument(Key(key) + " is not a known setting");
    }
    return Status::Ok();
  }

  std::string Key(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  std::string Where() const { return path_.empty() ? "configuration" : path_; }

 private:
  Status Missing(const std::string& key, bool required) const {
    if (required) return Status::InvalidArgument(Key(key) + " is required");
    return Status::Ok();
  }

  const json& node_;
  std::string path_;
  std::set<std::string> seen_;
};

std::string Resolve(const std::string& base, const std::string& path) {
  if (path.empty()) return path;
  fs::path p(path);
  if (p.is_absolute()) return p.lexically_normal().string();
  return (fs::path(base) / p).lexically_normal().string();
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// "host:port": a DNS name or a 127.x.y.z literal, and a port 1..65535.
Status ValidateEgressEndpoint(const std::string& endpoint, const std::string& key) {
  const size_t colon = endpoint.rfind(':');
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(key + ": '" + endpoint.substr(0, 300) + "' " + why);
  };
  if (colon == std::string::npos || colon == 0 || endpoint.size() > 300) {
    return bad("must be host:port");
  }
  const std::string host = endpoint.substr(0, colon);
  const std::string port = endpoint.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return bad("needs a port between 1 and 65535");
  }
  const bool numeric = std::all_of(host.begin(), host.end(),
                                   [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (numeric) {
    in_addr parsed{};
    if (::inet_pton(AF_INET, host.c_str(), &parsed) != 1) return bad("is not an IPv4 address");
    if ((ntohl(parsed.s_addr) >> 24) != 127) {
      return bad(
          "names a non-loopback address: name the source by its host name so the enclave can "
          "map it");
    }
    return Status::Ok();
  }
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) {
      return bad("has a host that is not a DNS name");
    }
  }
  return Status::Ok();
}

Status ParsePluginRef(const json& node, const std::string& path, const std::string& name,
                      const KernelConfig& config, PluginRef* out, bool connector = false,
                      NotifierEntry* notifier = nullptr) {
  Reader r(node, path);
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  if (notifier != nullptr) {
    AIRLOCK_RETURN_IF_ERROR(r.StringList("events", &notifier->events));
    AIRLOCK_RETURN_IF_ERROR(r.StringList("audiences", &notifier->audiences));
    AIRLOCK_RETURN_IF_ERROR(r.StringList("tenants", &notifier->tenants));
  }
  if (connector) {
    AIRLOCK_RETURN_IF_ERROR(r.StringList("egress", &out->egress));
    AIRLOCK_RETURN_IF_ERROR(r.String("agent", &out->agent));
    for (size_t i = 0; i < out->egress.size(); ++i) {
      AIRLOCK_RETURN_IF_ERROR(
          ValidateEgressEndpoint(out->egress[i], r.Key("egress") + "[" + std::to_string(i) + "]"));
    }
    AIRLOCK_RETURN_IF_ERROR(r.StringList("read_paths", &out->read_paths));
    for (auto& read_path : out->read_paths) {
      read_path = fs::path(Resolve(config.config_dir, read_path)).lexically_normal().string();
    }
  }
  out->name = name;
  AIRLOCK_RETURN_IF_ERROR(r.String("name", &out->name));
  std::string plugin;
  AIRLOCK_RETURN_IF_ERROR(r.String("plugin", &plugin, /*required=*/true));
  out->path = Resolve(config.plugin_dir, plugin);
  if (fs::path(plugin).extension() != ".so" && fs::path(plugin).extension() != "") {
    return Status::InvalidArgument(r.Key("plugin") + " must name a shared object (.so)");
  }
  if (fs::path(plugin).extension().empty()) out->path += ".so";
  std::string pin;
  AIRLOCK_RETURN_IF_ERROR(r.String("sha256", &pin));
  if (!pin.empty()) {
    if (!IsHex64(pin)) return Status::InvalidArgument(r.Key("sha256") + " must be 64 hex digits");
    for (char& c : pin) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out->sha256 = pin;
  }
  if (const json* cfg = r.Child("config")) {
    if (!cfg->is_object()) return Status::InvalidArgument(r.Key("config") + " must be an object");
    out->config = *cfg;
  }
  // Plugin configuration may live in its own file (e.g. a policy document).
  std::string config_file;
  AIRLOCK_RETURN_IF_ERROR(r.String("config_file", &config_file));
  if (!config_file.empty()) {
    if (r.Has("config")) {
      return Status::InvalidArgument(path + ": set config or config_file, not both");
    }
    const std::string resolved = Resolve(config.config_dir, config_file);
    std::ifstream in(resolved);
    if (!in) return Status::NotFound(r.Key("config_file") + ": cannot read " + resolved);
    std::stringstream text;
    text << in.rdbuf();
    if (!JsonNestingWithin(text.str(), kMaxConfigDepth)) {
      return Status::InvalidArgument(r.Key("config_file") + ": " + resolved +
                                     " nests deeper than " + std::to_string(kMaxConfigDepth) +
                                     " levels");
    }
    auto parsed = ParseStrictJson(text.str(), r.Key("config_file") + ": " + resolved);
    if (!parsed.ok()) return parsed.status();
    if (!parsed->is_object()) {
      return Status::InvalidArgument(r.Key("config_file") + ": " + resolved +
                                     " is not a JSON object");
    }
    out->config = std::move(parsed).value();
  }
  // Plugins that read files get paths relative to the configuration file.
  out->config["$config_dir"] = config.config_dir;
  return r.RejectUnknownKeys();
}

Status ParseServer(Reader& top, ServerConfig* server, const std::string& base) {
  const json* node = top.Child("server");
  if (node == nullptr) return Status::Ok();
  Reader r(*node, "server");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  AIRLOCK_RETURN_IF_ERROR(r.String("listen_address", &server->listen_address));
  int64_t port = server->port;
  AIRLOCK_RETURN_IF_ERROR(r.Int("port", &port, 0, 65535));
  server->port = static_cast<uint16_t>(port);
  int64_t body = static_cast<int64_t>(server->body_limit_bytes);
  AIRLOCK_RETURN_IF_ERROR(r.Int("body_limit_bytes", &body, 1024, int64_t{64} << 20));
  server->body_limit_bytes = static_cast<size_t>(body);
  int64_t headers = static_cast<int64_t>(server->max_header_count);
  AIRLOCK_RETURN_IF_ERROR(r.Int("max_header_count", &headers, 8, 1024));
  server->max_header_count = static_cast<size_t>(headers);
  AIRLOCK_RETURN_IF_ERROR(r.Int("read_timeout_ms", &server->read_timeout_ms, 100, 600000));
  AIRLOCK_RETURN_IF_ERROR(r.Int("max_connections", &server->max_connections, 2, 1 << 20));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("max_preauth_connections", &server->max_preauth_connections, 1, 1 << 20));
  AIRLOCK_RETURN_IF_ERROR(r.Int("max_preauth_connections_per_address",
                                &server->max_preauth_connections_per_address, 1, 1 << 20));
  AIRLOCK_RETURN_IF_ERROR(r.Int("preauth_timeout_ms", &server->preauth_timeout_ms, 100, 600000));
  if (server->max_preauth_connections >= server->max_connections) {
    return Status::InvalidArgument(
        "server.max_preauth_connections must be smaller than server.max_connections (the rest "
        "is kept for authenticated clients)");
  }
  if (server->max_preauth_connections_per_address > server->max_preauth_connections) {
    return Status::InvalidArgument(
        "server.max_preauth_connections_per_address must not exceed "
        "server.max_preauth_connections");
  }
  int64_t io = server->io_threads, handlers = server->handler_threads;
  AIRLOCK_RETURN_IF_ERROR(r.Int("io_threads", &io, 1, 256));
  AIRLOCK_RETURN_IF_ERROR(r.Int("handler_threads", &handlers, 1, 1024));
  server->io_threads = static_cast<int>(io);
  server->handler_threads = static_cast<int>(handlers);
  if (const json* tls = r.Child("tls")) {
    Reader t(*tls, "server.tls");
    AIRLOCK_RETURN_IF_ERROR(t.ExpectObject());
    AIRLOCK_RETURN_IF_ERROR(t.String("certificate_file", &server->tls_certificate_file, true));
    AIRLOCK_RETURN_IF_ERROR(t.String("private_key_file", &server->tls_private_key_file, true));
    AIRLOCK_RETURN_IF_ERROR(t.String("client_ca_file", &server->tls_client_ca_file));
    AIRLOCK_RETURN_IF_ERROR(t.RejectUnknownKeys());
    server->tls_certificate_file = Resolve(base, server->tls_certificate_file);
    server->tls_private_key_file = Resolve(base, server->tls_private_key_file);
    server->tls_client_ca_file = Resolve(base, server->tls_client_ca_file);
  }
  return r.RejectUnknownKeys();
}

// True when `path` is `dir` or lies below it, symlinks resolved as far as
// the paths exist.
bool IsInside(const fs::path& path, const fs::path& dir) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(path, ec).lexically_normal();
  const fs::path d = fs::weakly_canonical(dir, ec).lexically_normal();
  auto pi = p.begin();
  for (auto di = d.begin(); di != d.end(); ++di, ++pi) {
    if (di->empty()) continue;  // a trailing separator
    if (pi == p.end() || *pi != *di) return false;
  }
  return true;
}

bool IsSecretReference(const std::string& ref);

// audit.export: where the audit is streamed (each destination's cursor kept
// with the chain's backend: a file, or a row in PostgreSQL).
Status ParseAuditExports(const json& node, KernelConfig& config) {
  if (!node.is_array()) return Status::InvalidArgument("audit.export must be an array");
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    Reader e(node[i], "audit.export[" + std::to_string(i) + "]");
    AIRLOCK_RETURN_IF_ERROR(e.ExpectObject());
    AuditExportConfig out;
    AIRLOCK_RETURN_IF_ERROR(e.String("name", &out.name, /*required=*/true));
    std::string& type = out.type;
    AIRLOCK_RETURN_IF_ERROR(e.String("type", &type));
    AIRLOCK_RETURN_IF_ERROR(e.String("url", &out.url, /*required=*/true));
    AIRLOCK_RETURN_IF_ERROR(e.Bool("allow_plaintext_http", &out.allow_plaintext_http));
    AIRLOCK_RETURN_IF_ERROR(e.String("ca_file", &out.ca_file));
    AIRLOCK_RETURN_IF_ERROR(e.String("authorization", &out.authorization));
    AIRLOCK_RETURN_IF_ERROR(e.Int("batch_records", &out.batch_records, 1, 10000));
    AIRLOCK_RETURN_IF_ERROR(e.Int("max_backoff_ms", &out.max_backoff_ms, 100, 3600000));
    AIRLOCK_RETURN_IF_ERROR(e.Int("timeout_ms", &out.timeout_ms, 100, 600000));
    AIRLOCK_RETURN_IF_ERROR(
        e.Int("lag_alarm_records", &out.lag_alarm_records, 1, int64_t{1} << 40));
    AIRLOCK_RETURN_IF_ERROR(e.RejectUnknownKeys());
    if (type != "https" && type != "syslog") {
      return Status::InvalidArgument(e.Key("type") +
                                     " must be \"https\" (JSON lines over HTTPS) or \"syslog\" "
                                     "(RFC 5424 over TLS)");
    }
    if (out.name.empty() || out.name.size() > 64 ||
        out.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
      return Status::InvalidArgument(e.Key("name") + " must be 1 to 64 of a-z, 0-9, _ and -");
    }
    if (!names.insert(out.name).second) {
      return Status::InvalidArgument(e.Key("name") + " repeats \"" + out.name + "\"");
    }
    if (type == "syslog") {
      if (out.url.rfind("tls://", 0) != 0 || out.url.size() == 6) {
        return Status::InvalidArgument(e.Key("url") +
                                       " must be tls://host[:port] for a syslog destination");
      }
      if (!out.authorization.empty() || out.allow_plaintext_http) {
        return Status::InvalidArgument(
            e.Key("authorization") +
            " and allow_plaintext_http apply to https destinations only (a syslog receiver is "
            "authenticated by its certificate)");
      }
      out.ca_file = Resolve(config.config_dir, out.ca_file);
      config.audit.exports.push_back(std::move(out));
      continue;
    }
    const bool https = out.url.rfind("https://", 0) == 0;
    const bool http = out.url.rfind("http://", 0) == 0;
    if (!https && !(http && out.allow_plaintext_http)) {
      return Status::InvalidArgument(
          e.Key("url") + " must be https:// (http:// only with allow_plaintext_http, for tests)");
    }
    if (!out.authorization.empty() && !IsSecretReference(out.authorization)) {
      return Status::InvalidArgument(e.Key("authorization") +
                                     " must be a secret reference: env:NAME or file:PATH");
    }
    out.ca_file = Resolve(config.config_dir, out.ca_file);
    config.audit.exports.push_back(std::move(out));
  }
  return Status::Ok();
}

Status ParseAudit(Reader& top, const std::string& state_dir, KernelConfig* config) {
  const bool shared_state = config->state.backend == StateBackend::kPostgres;
  config->audit.backend = shared_state ? AuditBackend::kPostgres : AuditBackend::kFile;
  const json* node = top.Child("audit");
  if (node == nullptr) return Status::Ok();
  Reader r(*node, "audit");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  std::string backend = shared_state ? "postgres" : "file";
  AIRLOCK_RETURN_IF_ERROR(r.String("backend", &backend));
  if (backend == "file") {
    config->audit.backend = AuditBackend::kFile;
  } else if (backend == "postgres") {
    if (!shared_state) {
      return Status::InvalidArgument(
          "audit.backend \"postgres\" keeps the chain in the state store's database: it needs "
          "state.backend \"postgres\"");
    }
    config->audit.backend = AuditBackend::kPostgres;
  } else {
    return Status::InvalidArgument("audit.backend must be \"file\" or \"postgres\"");
  }
  if (const json* exports = r.Child("export")) {
    AIRLOCK_RETURN_IF_ERROR(ParseAuditExports(*exports, *config));
  }
  if (const json* checkpoints = r.Child("checkpoints")) {
    Reader c(*checkpoints, "audit.checkpoints");
    AIRLOCK_RETURN_IF_ERROR(c.ExpectObject());
    AuditCheckpointConfig& out = config->audit.checkpoints;
    out.enabled = true;
    AIRLOCK_RETURN_IF_ERROR(c.String("signing_key", &out.signing_key, /*required=*/true));
    AIRLOCK_RETURN_IF_ERROR(c.Int("every_records", &out.every_records, 1, 100000000));
    AIRLOCK_RETURN_IF_ERROR(c.Int("every_seconds", &out.every_seconds, 1, 86400));
    AIRLOCK_RETURN_IF_ERROR(c.Bool("syslog", &out.syslog));
    AIRLOCK_RETURN_IF_ERROR(c.StringList("previous_public_keys", &out.previous_public_keys));
    for (auto& path : out.previous_public_keys) path = Resolve(config->config_dir, path);
    AIRLOCK_RETURN_IF_ERROR(c.RejectUnknownKeys());
    const std::string key = c.Key("signing_key");
    if (out.signing_key.starts_with("file:")) {
      const std::string path = out.signing_key.substr(5);
      if (path.empty()) return Status::InvalidArgument(key + ": file: needs a path");
      out.signing_key = "file:" + Resolve(config->config_dir, path);
      const fs::path file(out.signing_key.substr(5));
      for (const fs::path& dir :
           {fs::path(state_dir), fs::path(config->audit_path).parent_path()}) {
        if (IsInside(file, dir)) {
          return Status::InvalidArgument(
              key + " must live outside the state directory and the audit log's directory (" +
              dir.string() + "): whoever can write those must not hold the key");
        }
      }
    } else if (!out.signing_key.starts_with("env:")) {
      return Status::InvalidArgument(key + " must be a secret reference: env:NAME or file:PATH");
    }
  }
  return r.RejectUnknownKeys();
}

// The state block. Only the chosen backend's keys are accepted, and the
// connection string must be a reference: a string that is not one is never
// quoted back (it may be a connection string with its password).
bool IsSecretReference(const std::string& ref) {
  return ref.rfind("env:", 0) == 0 || ref.rfind("file:", 0) == 0;
}

Status ParseState(Reader& top, StateConfig* state, const std::string& base) {
  const json* node = top.Child("state");
  if (node == nullptr) return Status::Ok();
  Reader r(*node, "state");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  std::string backend = "sqlite";
  AIRLOCK_RETURN_IF_ERROR(r.String("backend", &backend));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("heartbeat_interval_ms", &state->heartbeat_interval_ms, 100, 600000));
  // Unset, the lease lasts three beats.
  state->lease_ttl_ms = 3 * state->heartbeat_interval_ms;
  AIRLOCK_RETURN_IF_ERROR(r.Int("lease_ttl_ms", &state->lease_ttl_ms, 200, 3600000));
  if (state->lease_ttl_ms < 2 * state->heartbeat_interval_ms) {
    return Status::InvalidArgument(
        "state.lease_ttl_ms must be at least twice state.heartbeat_interval_ms, so that one "
        "late beat does not lose the lease");
  }
  if (backend == "sqlite") {
    state->backend = StateBackend::kSqlite;
    if (r.Child("peer") != nullptr) {
      return Status::InvalidArgument(
          "state.peer links replicas that share a PostgreSQL state store; the sqlite backend "
          "has one kernel");
    }
    return r.RejectUnknownKeys();
  }
  if (backend != "postgres") {
    return Status::InvalidArgument("state.backend must be \"sqlite\" or \"postgres\"");
  }
  state->backend = StateBackend::kPostgres;
  AIRLOCK_RETURN_IF_ERROR(r.String("dsn_secret", &state->dsn_secret, /*required=*/true));
  if (!IsSecretReference(state->dsn_secret)) {
    return Status::InvalidArgument(
        "state.dsn_secret must be a secret reference (env:NAME or file:/path) naming the "
        "connection string, not the connection string itself");
  }
  AIRLOCK_RETURN_IF_ERROR(r.Int("read_connections", &state->read_connections, 1, 64));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("connect_timeout_seconds", &state->connect_timeout_seconds, 1, 300));
  if (const json* tls = r.Child("tls")) {
    Reader t(*tls, "state.tls");
    AIRLOCK_RETURN_IF_ERROR(t.ExpectObject());
    state->tls_mode = "verify-full";
    AIRLOCK_RETURN_IF_ERROR(t.String("mode", &state->tls_mode));
    if (state->tls_mode != "require" && state->tls_mode != "verify-ca" &&
        state->tls_mode != "verify-full") {
      return Status::InvalidArgument(
          "state.tls.mode must be \"require\", \"verify-ca\" or \"verify-full\"");
    }
    AIRLOCK_RETURN_IF_ERROR(t.String("ca_file", &state->tls_ca_file));
    AIRLOCK_RETURN_IF_ERROR(t.String("cert_file", &state->tls_cert_file));
    AIRLOCK_RETURN_IF_ERROR(t.String("key_file", &state->tls_key_file));
    AIRLOCK_RETURN_IF_ERROR(t.RejectUnknownKeys());
    if (state->tls_mode != "require" && state->tls_ca_file.empty()) {
      return Status::InvalidArgument("state.tls.ca_file is required by mode " + state->tls_mode);
    }
    if (state->tls_cert_file.empty() != state->tls_key_file.empty()) {
      return Status::InvalidArgument("state.tls.cert_file and state.tls.key_file go together");
    }
    state->tls_ca_file = Resolve(base, state->tls_ca_file);
    state->tls_cert_file = Resolve(base, state->tls_cert_file);
    state->tls_key_file = Resolve(base, state->tls_key_file);
  }
  if (const json* peer = r.Child("peer")) {
    Reader p(*peer, "state.peer");
    AIRLOCK_RETURN_IF_ERROR(p.ExpectObject());
    state->peer_enabled = true;
    AIRLOCK_RETURN_IF_ERROR(p.String("secret", &state->peer_secret, /*required=*/true));
    if (!IsSecretReference(state->peer_secret)) {
      return Status::InvalidArgument(
          "state.peer.secret must be a secret reference (env:NAME or file:/path) naming the "
          "token replicas share, not the token itself");
    }
    AIRLOCK_RETURN_IF_ERROR(p.String("ca_file", &state->peer_ca_file));
    if (!state->peer_ca_file.empty()) state->peer_ca_file = Resolve(base, state->peer_ca_file);
    AIRLOCK_RETURN_IF_ERROR(p.String("url", &state->peer_url));
    const std::string& url = state->peer_url;
    if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      return Status::InvalidArgument(
          "state.peer.url must be this replica's API URL (http://host:port or "
          "https://host:port)");
    }
    if (url.size() > 512 || url.find_first_of(" \t\r\n\"") != std::string::npos) {
      return Status::InvalidArgument("state.peer.url is not a URL");
    }
    AIRLOCK_RETURN_IF_ERROR(p.RejectUnknownKeys());
  }
  return r.RejectUnknownKeys();
}

Status ParseLimits(Reader& top, LimitsConfig* limits) {
  const json* node = top.Child("limits");
  if (node == nullptr) return Status::Ok();
  Reader r(*node, "limits");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  constexpr int64_t kYear = 366LL * 86400;
  AIRLOCK_RETURN_IF_ERROR(r.Int("max_window_seconds", &limits->max_window_seconds, 1, kYear));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("default_window_seconds", &limits->default_window_seconds, 1, kYear));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("approval_timeout_seconds", &limits->approval_timeout_seconds, 1, kYear));
  AIRLOCK_RETURN_IF_ERROR(r.Int("query_timeout_ms", &limits->query_timeout_ms, 1, 86400000));
  AIRLOCK_RETURN_IF_ERROR(r.Int("max_result_rows", &limits->max_result_rows, 1, INT64_MAX));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("enclave_memory_bytes", &limits->enclave_memory_bytes, 1 << 20, INT64_MAX));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("max_datasets_per_request", &limits->max_datasets_per_request, 1, 1024));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("provision_timeout_ms", &limits->provision_timeout_ms, 100, 86400000));
  AIRLOCK_RETURN_IF_ERROR(r.Int("job_results_retention_seconds",
                                &limits->job_results_retention_seconds, 1, 90LL * 86400));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("max_job_result_bytes", &limits->max_job_result_bytes, 1024, int64_t{1} << 40));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("max_schedule_ahead_seconds", &limits->max_schedule_ahead_seconds, 0, kYear));
  if (limits->default_window_seconds > limits->max_window_seconds) {
    return Status::InvalidArgument(
        "limits.default_window_seconds must not exceed limits.max_window_seconds");
  }
  return r.RejectUnknownKeys();
}

// Agent names become certificate common names and appear in errors.
bool IsAgentName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

Status ParseAgents(Reader& top, const std::string& state_dir, const std::string& base,
                   AgentsConfig* agents) {
  const json* node = top.Child("agents");
  if (node == nullptr) return Status::Ok();
  Reader r(*node, "agents");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  agents->enabled = true;
  AIRLOCK_RETURN_IF_ERROR(r.String("listen_address", &agents->listen_address));
  int64_t port = agents->port;
  AIRLOCK_RETURN_IF_ERROR(r.Int("port", &port, 0, 65535));
  agents->port = static_cast<uint16_t>(port);
  AIRLOCK_RETURN_IF_ERROR(r.StringList("server_names", &agents->server_names));
  if (agents->server_names.empty()) agents->server_names = {agents->listen_address};
  for (const auto& name : agents->server_names) {
    if (name.empty() || name.size() > 253) {
      return Status::InvalidArgument("agents.server_names entries must be 1..253 characters");
    }
  }
  std::string dir;
  AIRLOCK_RETURN_IF_ERROR(r.String("state_dir", &dir));
  agents->state_dir = dir.empty() ? (fs::path(state_dir) / "agents").string() : Resolve(base, dir);
  std::string ca_dir;
  AIRLOCK_RETURN_IF_ERROR(r.String("ca_dir", &ca_dir));
  agents->ca_dir = ca_dir.empty() ? agents->state_dir : Resolve(base, ca_dir);
  AIRLOCK_RETURN_IF_ERROR(r.Int("certificate_lifetime_seconds",
                                &agents->certificate_lifetime_seconds, 3, 366LL * 86400));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("heartbeat_interval_ms", &agents->heartbeat_interval_ms, 50, 600000));
  AIRLOCK_RETURN_IF_ERROR(r.Int("offline_after_ms", &agents->offline_after_ms, 100, 3600000));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("provision_timeout_ms", &agents->provision_timeout_ms, 100, 3600000));
  AIRLOCK_RETURN_IF_ERROR(r.Bool("on_api_port", &agents->on_api_port));
  if (agents->offline_after_ms <= agents->heartbeat_interval_ms) {
    return Status::InvalidArgument(
        "agents.offline_after_ms must be longer than agents.heartbeat_interval_ms");
  }
  const json* list = r.Child("agents");
  if (list == nullptr || !list->is_object() || list->empty()) {
    return Status::InvalidArgument("agents.agents must be a non-empty object of agents by name");
  }
  for (const auto& [name, entry] : list->items()) {
    const std::string path = "agents.agents." + name;
    if (!IsAgentName(name)) {
      return Status::InvalidArgument(path + ": agent names are 1..63 of [A-Za-z0-9._-]");
    }
    Reader a(entry, path);
    AIRLOCK_RETURN_IF_ERROR(a.ExpectObject());
    AgentEntry agent;
    agent.name = name;
    AIRLOCK_RETURN_IF_ERROR(
        a.String("enrollment_token_sha256", &agent.enrollment_token_sha256, true));
    if (!IsHex64(agent.enrollment_token_sha256)) {
      return Status::InvalidArgument(a.Key("enrollment_token_sha256") +
                                     " must be 64 hex digits (SHA-256 of the token)");
    }
    for (char& c : agent.enrollment_token_sha256) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    AIRLOCK_RETURN_IF_ERROR(a.String("tenant", &agent.tenant));
    AIRLOCK_RETURN_IF_ERROR(a.RejectUnknownKeys());
    agents->agents.emplace(name, std::move(agent));
  }
  return r.RejectUnknownKeys();
}

// datasets[i].key: 1 to sdk::kMaxKeyColumns distinct column names, in key
// order (what the enclave honours).
Status ParseDatasetKey(Reader& r, std::vector<std::string>* key) {
  const json* node = r.Child("key");
  if (node == nullptr) return Status::Ok();
  AIRLOCK_ASSIGN_OR_RETURN(*key, sdk::KeyColumnsFromJson(*node, r.Key("key")));
  return Status::Ok();
}

// `with_tenants`: a dataset names its tenant (the kernel's own catalog); a
// site's datasets never do (they are their site's tenant's).
Status ParseDatasets(Reader& top, KernelConfig* config, bool with_tenants) {
  const json* node = top.Child("datasets");
  if (node == nullptr) return Status::InvalidArgument("datasets is required (the catalog)");
  if (!node->is_array()) return Status::InvalidArgument("datasets must be an array");
  std::set<std::string> names;
  for (size_t i = 0; i < node->size(); ++i) {
    const std::string path = "datasets[" + std::to_string(i) + "]";
    Reader r((*node)[i], path);
    AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
    DatasetInfo d;
    AIRLOCK_RETURN_IF_ERROR(r.String("name", &d.name, true));
    AIRLOCK_RETURN_IF_ERROR(r.String("connector", &d.connector, true));
    AIRLOCK_RETURN_IF_ERROR(r.String("object", &d.object));
    AIRLOCK_RETURN_IF_ERROR(r.String("description", &d.description));
    AIRLOCK_RETURN_IF_ERROR(r.StringList("tags", &d.tags));
    std::string tenant;
    if (with_tenants) {
      AIRLOCK_RETURN_IF_ERROR(r.String("tenant", &tenant));
    } else if (r.Has("tenant")) {
      return Status::InvalidArgument(r.Key("tenant") +
                                     ": a site's datasets belong to the site's tenant, which the "
                                     "kernel's configuration names (agents.agents.<name>.tenant)");
    }
    std::vector<std::string> key;
    AIRLOCK_RETURN_IF_ERROR(ParseDatasetKey(r, &key));
    if (const json* cols = r.Child("columns")) {
      if (!cols->is_array()) return Status::InvalidArgument(r.Key("columns") + " must be an array");
      for (size_t c = 0; c < cols->size(); ++c) {
        Reader cr((*cols)[c], r.Key("columns") + "[" + std::to_string(c) + "]");
        AIRLOCK_RETURN_IF_ERROR(cr.ExpectObject());
        ColumnInfo col;
        AIRLOCK_RETURN_IF_ERROR(cr.String("name", &col.name, true));
        AIRLOCK_RETURN_IF_ERROR(cr.String("type", &col.type));
        AIRLOCK_RETURN_IF_ERROR(cr.RejectUnknownKeys());
        d.columns.push_back(std::move(col));
      }
    }
    AIRLOCK_RETURN_IF_ERROR(r.RejectUnknownKeys());
    // Dataset names become table names inside the enclave.
    if (!IsSafeIdentifier(d.name)) {
      return Status::InvalidArgument(r.Key("name") +
                                     " must be an identifier ([A-Za-z_][A-Za-z0-9_]*, max 63)");
    }
    if (!names.insert(d.name).second) {
      return Status::InvalidArgument(r.Key("name") + " '" + d.name + "' is defined twice");
    }
    if (!config->connectors.count(d.connector)) {
      return Status::InvalidArgument(r.Key("connector") + " names unknown connector '" +
                                     d.connector + "'");
    }
    if (!d.columns.empty()) {
      for (const std::string& column : key) {
        if (std::none_of(d.columns.begin(), d.columns.end(),
                         [&](const ColumnInfo& c) { return c.name == column; })) {
          return Status::InvalidArgument(r.Key("key") + " names '" + column +
                                         "', which is not one of its columns");
        }
      }
    }
    if (d.object.empty()) d.object = d.name;
    if (!tenant.empty()) config->dataset_tenants.emplace(d.name, std::move(tenant));
    if (!key.empty()) config->dataset_keys.emplace(d.name, std::move(key));
    config->datasets.push_back(std::move(d));
  }
  return Status::Ok();
}

Status CheckAllowed(const std::vector<std::string>& values, const std::vector<std::string>& allowed,
                    const std::string& key) {
  for (const std::string& value : values) {
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Status::InvalidArgument(key + ": unknown value '" + value + "' (one of " + list + ")");
    }
  }
  return Status::Ok();
}

Status ParseNotifications(Reader& top, KernelConfig* config) {
  const json* node = top.Child("notifications");
  if (node == nullptr) return Status::Ok();
  NotificationsConfig& n = config->notifications;
  Reader r(*node, "notifications");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  AIRLOCK_RETURN_IF_ERROR(r.String("console_url", &n.console_url));
  if (!n.console_url.empty() && n.console_url.rfind("https://", 0) != 0 &&
      n.console_url.rfind("http://", 0) != 0) {
    return Status::InvalidArgument("notifications.console_url must be an http(s) URL");
  }
  while (!n.console_url.empty() && n.console_url.back() == '/') n.console_url.pop_back();
  AIRLOCK_RETURN_IF_ERROR(r.Int("max_attempts", &n.max_attempts, 1, 1000));
  AIRLOCK_RETURN_IF_ERROR(r.Int("initial_backoff_ms", &n.initial_backoff_ms, 10, 3600000));
  AIRLOCK_RETURN_IF_ERROR(r.Int("max_backoff_ms", &n.max_backoff_ms, 10, 86400000));
  if (n.max_backoff_ms < n.initial_backoff_ms) {
    return Status::InvalidArgument(
        "notifications.max_backoff_ms must be at least notifications.initial_backoff_ms");
  }
  AIRLOCK_RETURN_IF_ERROR(r.Int("expiring_notice_seconds", &n.expiring_notice_seconds, 0, 86400));
  AIRLOCK_RETURN_IF_ERROR(r.Int("retention_seconds", &n.retention_seconds, 60, 366 * 86400));
  if (const json* notifiers = r.Child("notifiers")) {
    if (!notifiers->is_object()) {
      return Status::InvalidArgument("notifications.notifiers must be an object of notifiers");
    }
    for (const auto& [name, item] : notifiers->items()) {
      const std::string path = "notifications.notifiers." + name;
      const bool plain = std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      });
      if (name.empty() || name.size() > kMaxNotifierNameBytes || !plain) {
        // The name is part of every notification's idempotency key.
        return Status::InvalidArgument(path + ": notifier names are 1 to " +
                                       std::to_string(kMaxNotifierNameBytes) +
                                       " letters, digits, '-', '_' or '.'");
      }
      NotifierEntry entry;
      AIRLOCK_RETURN_IF_ERROR(
          ParsePluginRef(item, path, name, *config, &entry.plugin, /*connector=*/false, &entry));
      AIRLOCK_RETURN_IF_ERROR(CheckAllowed(entry.events, kNotificationEvents, path + ".events"));
      AIRLOCK_RETURN_IF_ERROR(
          CheckAllowed(entry.audiences, {"approvers", "requester"}, path + ".audiences"));
      if (config->tenants.empty() && !entry.tenants.empty()) {
        return Status::InvalidArgument(path + ".tenants names tenants but none are configured");
      }
      if (!config->tenants.empty()) {
        if (entry.tenants.empty()) {
          return Status::InvalidArgument(
              path +
              ".tenants is required with tenants configured: the tenants whose requests "
              "it tells of, or [\"*\"] for every tenant's");
        }
        std::vector<std::string> allowed = {"*"};
        for (const auto& [tenant, unused] : config->tenants) allowed.push_back(tenant);
        AIRLOCK_RETURN_IF_ERROR(CheckAllowed(entry.tenants, allowed, path + ".tenants"));
      }
      n.notifiers.emplace(name, std::move(entry));
    }
  }
  return r.RejectUnknownKeys();
}

Status ParseConsole(Reader& top, ConsoleConfig* console) {
  const json* node = top.Child("console");
  if (node == nullptr) return Status::Ok();
  Reader r(*node, "console");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  if (const json* oidc_node = r.Child("oidc")) {
    Reader o(*oidc_node, "console.oidc");
    AIRLOCK_RETURN_IF_ERROR(o.ExpectObject());
    ConsoleConfig::Oidc oidc;
    AIRLOCK_RETURN_IF_ERROR(o.String("issuer", &oidc.issuer, /*required=*/true));
    AIRLOCK_RETURN_IF_ERROR(o.String("client_id", &oidc.client_id, /*required=*/true));
    AIRLOCK_RETURN_IF_ERROR(o.String("scopes", &oidc.scopes));
    // The issuer's origin joins the console's Content-Security-Policy: it
    // must be a plain https origin (and path), nothing that could widen it.
    const bool plain_issuer = oidc.issuer.rfind("https://", 0) == 0 && oidc.issuer.size() > 8 &&
                              oidc.issuer.size() <= 512 &&
                              std::all_of(oidc.issuer.begin() + 8, oidc.issuer.end(), [](char c) {
                                return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                       c == '-' || c == ':' || c == '/' || c == '_' || c == '~';
                              });
    if (!plain_issuer) {
      return Status::InvalidArgument(
          "console.oidc.issuer must be an https:// URL of letters, digits and . - _ ~ : / "
          "(at most 512 bytes)");
    }
    while (oidc.issuer.back() == '/') oidc.issuer.pop_back();
    const auto printable = [](const std::string& text) {
      return std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 127; });
    };
    if (oidc.client_id.empty() || oidc.client_id.size() > 256 || !printable(oidc.client_id)) {
      return Status::InvalidArgument(
          "console.oidc.client_id must be 1 to 256 printable characters without spaces");
    }
    AIRLOCK_RETURN_IF_ERROR(o.String("cli_client_id", &oidc.cli_client_id));
    if (oidc.cli_client_id.size() > 256 || !printable(oidc.cli_client_id)) {
      return Status::InvalidArgument(
          "console.oidc.cli_client_id must be 1 to 256 printable characters without spaces");
    }
    const bool scopes_ok = oidc.scopes.size() <= 512 &&
                           std::all_of(oidc.scopes.begin(), oidc.scopes.end(), [](char c) {
                             return c == ' ' || (c > ' ' && c < 127 && c != '"' && c != '\\');
                           });
    if (!scopes_ok || (" " + oidc.scopes + " ").find(" openid ") == std::string::npos) {
      return Status::InvalidArgument(
          "console.oidc.scopes must be space-separated scope names including openid");
    }
    AIRLOCK_RETURN_IF_ERROR(o.RejectUnknownKeys());
    console->oidc = std::move(oidc);
  }
  return r.RejectUnknownKeys();
}

// An http(s) URL without trailing slashes, of printable characters only.
bool PlainHttpUrl(std::string& url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const bool scheme = url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
  return scheme && url.size() <= 512 && std::all_of(url.begin(), url.end(), [](char c) {
           return c > ' ' && c < 127 && c != '"' && c != '\\';
         });
}

Status ParseCatalog(Reader& top, CatalogConfig* catalog) {
  const json* node = top.Child("catalog");
  if (node == nullptr) return Status::Ok();
  Reader r(*node, "catalog");
  AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
  AIRLOCK_RETURN_IF_ERROR(r.Bool("describe", &catalog->describe));
  AIRLOCK_RETURN_IF_ERROR(
      r.Int("describe_timeout_ms", &catalog->describe_timeout_ms, 1000, 3'600'000));
  return r.RejectUnknownKeys();
}

// "tenants", and that every dataset and agent names one of them (when
// there are tenants) or none does (when there are not). Runs after the
// datasets, connectors, agents and access are parsed.
Status ParseTenants(Reader& top, KernelConfig* config) {
  if (const json* node = top.Child("tenants")) {
    if (!node->is_object() || node->empty()) {
      return Status::InvalidArgument("tenants must be a non-empty object of tenants by name");
    }
    for (const auto& [name, entry] : node->items()) {
      const std::string path = "tenants." + name;
      if (!IsTenantName(name)) {
        return Status::InvalidArgument(path +
                                       ": tenant names are 1..63 of [a-z0-9_-], starting with a "
                                       "letter or digit");
      }
      Reader r(entry, path);
      AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
      TenantConfig tenant;
      tenant.name = name;
      AIRLOCK_RETURN_IF_ERROR(r.StringList("subjects", &tenant.subjects));
      AIRLOCK_RETURN_IF_ERROR(r.StringList("groups", &tenant.groups));
      AIRLOCK_RETURN_IF_ERROR(r.StringList("admin_groups", &tenant.admin_groups));
      if (const json* policy = r.Child("policy")) {
        PluginRef ref;
        AIRLOCK_RETURN_IF_ERROR(
            ParsePluginRef(*policy, path + ".policy", "policy-" + name, *config, &ref));
        tenant.policy = std::move(ref);
      }
      AIRLOCK_RETURN_IF_ERROR(r.RejectUnknownKeys());
      config->tenants.emplace(name, std::move(tenant));
    }
    // A subject or group two tenants claim would make its members belong to
    // both, which is refused at every call: refused here instead.
    std::map<std::string, std::string> claimed;
    for (const auto& [name, tenant] : config->tenants) {
      for (const auto* list : {&tenant.subjects, &tenant.groups}) {
        const std::string kind = list == &tenant.subjects ? "subject" : "group";
        for (const std::string& member : *list) {
          auto [it, fresh] = claimed.emplace(kind + ":" + member, name);
          if (!fresh && it->second != name) {
            return Status::InvalidArgument("tenants." + name + "." + kind + "s: " + kind + " '" +
                                           member + "' also belongs to tenant '" + it->second +
                                           "'");
          }
        }
      }
    }
  }
  const bool tenanted = !config->tenants.empty();
  auto check = [&](const std::string& key, const std::string& tenant) -> Status {
    if (!tenanted) {
      if (tenant.empty()) return Status::Ok();
      return Status::InvalidArgument(key + " names tenant '" + tenant +
                                     "' but no tenants are configured");
    }
    if (tenant.empty()) {
      return Status::InvalidArgument(key +
                                     " is required: with tenants configured, everything "
                                     "belongs to one");
    }
    if (!config->tenants.count(tenant)) {
      return Status::InvalidArgument(key + " names unknown tenant '" + tenant + "'");
    }
    return Status::Ok();
  };
  for (const auto& [name, agent] : config->agents.agents) {
    AIRLOCK_RETURN_IF_ERROR(check("agents.agents." + name + ".tenant", agent.tenant));
  }
  for (size_t i = 0; i < config->datasets.size(); ++i) {
    const DatasetInfo& d = config->datasets[i];
    const auto it = config->dataset_tenants.find(d.name);
    const std::string tenant = it == config->dataset_tenants.end() ? "" : it->second;
    const std::string key = "datasets[" + std::to_string(i) + "].tenant";
    AIRLOCK_RETURN_IF_ERROR(check(key, tenant));
    // A dataset served from a site is the site's tenant's: one tenant's
    // data never runs on another's host.
    const auto connector = config->connectors.find(d.connector);
    if (tenanted && connector != config->connectors.end() && !connector->second.agent.empty()) {
      const auto agent = config->agents.agents.find(connector->second.agent);
      if (agent != config->agents.agents.end() && agent->second.tenant != tenant) {
        return Status::InvalidArgument(key + " '" + tenant + "' differs from the tenant '" +
                                       agent->second.tenant + "' of agent '" + agent->first +
                                       "', whose host serves it");
      }
    }
  }
  return Status::Ok();
}

Status ParseMcp(Reader& top, KernelConfig* config) {
  McpConfig& mcp = config->mcp;
  if (const json* node = top.Child("mcp")) {
    Reader r(*node, "mcp");
    AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
    AIRLOCK_RETURN_IF_ERROR(r.String("public_url", &mcp.public_url));
    if (!mcp.public_url.empty() && !PlainHttpUrl(mcp.public_url)) {
      return Status::InvalidArgument("mcp.public_url must be an http(s) URL");
    }
    AIRLOCK_RETURN_IF_ERROR(r.StringList("authorization_servers", &mcp.authorization_servers));
    for (std::string& server : mcp.authorization_servers) {
      if (!PlainHttpUrl(server)) {
        return Status::InvalidArgument("mcp.authorization_servers must hold http(s) URLs");
      }
    }
    AIRLOCK_RETURN_IF_ERROR(r.Int("max_rows", &mcp.max_rows, 1, 100000));
    AIRLOCK_RETURN_IF_ERROR(r.RejectUnknownKeys());
  }
  if (mcp.authorization_servers.empty()) {
    for (const PluginRef& identity : config->identity) {
      const json* issuer = identity.config.is_object() && identity.config.contains("issuer")
                               ? &identity.config["issuer"]
                               : nullptr;
      if (issuer == nullptr || !issuer->is_string()) continue;
      std::string url = issuer->get<std::string>();
      if (PlainHttpUrl(url)) mcp.authorization_servers.push_back(std::move(url));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<SiteSources> ParseSiteSources(const json& document, const std::string& config_dir,
                                     const std::string& plugin_dir) {
  KernelConfig scratch;
  scratch.config_dir = config_dir;
  scratch.plugin_dir = plugin_dir;
  SiteSources out;
  const auto connectors = document.find("connectors");
  if (connectors == document.end() || !connectors->is_object() || connectors->empty() ||
      connectors->size() > 256) {
    return Status::InvalidArgument("connectors must be an object of 1 to 256 connector instances");
  }
  for (const auto& [name, node] : connectors->items()) {
    if (node.is_object() && node.contains("agent")) {
      return Status::InvalidArgument("connectors." + name +
                                     ".agent: a site's connectors run on its own host");
    }
    PluginRef ref;
    AIRLOCK_RETURN_IF_ERROR(
        ParsePluginRef(node, "connectors." + name, name, scratch, &ref, /*connector=*/true));
    scratch.connectors.emplace(name, std::move(ref));
  }
  Reader top(document, "");
  AIRLOCK_RETURN_IF_ERROR(ParseDatasets(top, &scratch, /*with_tenants=*/false));
  if (scratch.datasets.size() > 1000) {
    return Status::InvalidArgument("a site declares at most 1000 datasets");
  }
  out.connectors = std::move(scratch.connectors);
  out.datasets = std::move(scratch.datasets);
  out.keys = std::move(scratch.dataset_keys);
  return out;
}

bool IsTenantName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lower_or_digit(c) || c == '_' || c == '-'; });
}

bool IsSafeIdentifier(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

Result<KernelConfig> ParseKernelConfig(const json& document, const std::string& config_path,
                                       const std::string& default_plugin_dir) {
  KernelConfig config;
  config.source_path = fs::absolute(fs::path(config_path)).lexically_normal().string();
  config.config_dir = fs::absolute(fs::path(config_path)).parent_path().lexically_normal().string();
  Reader top(document, "");
  AIRLOCK_RETURN_IF_ERROR(top.ExpectObject());

  std::string plugin_dir;
  AIRLOCK_RETURN_IF_ERROR(top.String("plugin_dir", &plugin_dir));
  config.plugin_dir =
      plugin_dir.empty() ? default_plugin_dir : Resolve(config.config_dir, plugin_dir);

  AIRLOCK_RETURN_IF_ERROR(ParseServer(top, &config.server, config.config_dir));

  std::string state_dir = "state";
  AIRLOCK_RETURN_IF_ERROR(top.String("state_dir", &state_dir));
  state_dir = Resolve(config.config_dir, state_dir);
  config.state_path = (fs::path(state_dir) / "state.db").string();
  config.audit_path = (fs::path(state_dir) / "audit.log").string();
  config.results_dir = (fs::path(state_dir) / "results").string();
  AIRLOCK_RETURN_IF_ERROR(ParseState(top, &config.state, config.config_dir));
  std::string audit_path;
  AIRLOCK_RETURN_IF_ERROR(top.String("audit_path", &audit_path));
  if (!audit_path.empty()) config.audit_path = Resolve(config.config_dir, audit_path);
  AIRLOCK_RETURN_IF_ERROR(ParseAudit(top, state_dir, &config));

  // Identity providers: an ordered list.
  const json* identity = top.Child("identity");
  if (identity == nullptr || !identity->is_array() || identity->empty()) {
    return Status::InvalidArgument("identity must be a non-empty array of identity plugins");
  }
  for (size_t i = 0; i < identity->size(); ++i) {
    PluginRef ref;
    AIRLOCK_RETURN_IF_ERROR(ParsePluginRef((*identity)[i], "identity[" + std::to_string(i) + "]",
                                           "identity-" + std::to_string(i), config, &ref));
    config.identity.push_back(std::move(ref));
  }

  struct Single {
    const char* key;
    PluginRef* out;
  };
  for (Single single : {Single{"policy", &config.policy}, Single{"isolator", &config.isolator},
                        Single{"tunnel", &config.tunnel}}) {
    const json* node = top.Child(single.key);
    if (node == nullptr) return Status::InvalidArgument(std::string(single.key) + " is required");
    AIRLOCK_RETURN_IF_ERROR(ParsePluginRef(*node, single.key, single.key, config, single.out));
  }

  const json* connectors = top.Child("connectors");
  if (connectors == nullptr || !connectors->is_object() || connectors->empty()) {
    return Status::InvalidArgument("connectors must be a non-empty object of connector instances");
  }
  for (const auto& [name, node] : connectors->items()) {
    PluginRef ref;
    AIRLOCK_RETURN_IF_ERROR(
        ParsePluginRef(node, "connectors." + name, name, config, &ref, /*connector=*/true));
    config.connectors.emplace(name, std::move(ref));
  }

  AIRLOCK_RETURN_IF_ERROR(ParseDatasets(top, &config, /*with_tenants=*/true));
  AIRLOCK_RETURN_IF_ERROR(ParseAgents(top, state_dir, config.config_dir, &config.agents));
  if (config.agents.on_api_port && config.server.tls_certificate_file.empty()) {
    return Status::InvalidArgument(
        "agents.on_api_port needs server.tls: agents share the port only with an HTTPS API");
  }
  for (const auto& [name, ref] : config.connectors) {
    if (ref.agent.empty()) continue;
    if (!config.agents.agents.count(ref.agent)) {
      return Status::InvalidArgument("connectors." + name + ".agent names unknown agent '" +
                                     ref.agent + "' (declare it under agents.agents)");
    }
  }

  if (const json* access = top.Child("access")) {
    Reader r(*access, "access");
    AIRLOCK_RETURN_IF_ERROR(r.ExpectObject());
    AIRLOCK_RETURN_IF_ERROR(r.StringList("admin_groups", &config.admin_groups));
    AIRLOCK_RETURN_IF_ERROR(r.StringList("reviewer_groups", &config.reviewer_groups));
    AIRLOCK_RETURN_IF_ERROR(r.RejectUnknownKeys());
  }
  AIRLOCK_RETURN_IF_ERROR(ParseTenants(top, &config));
  AIRLOCK_RETURN_IF_ERROR(ParseLimits(top, &config.limits));
  AIRLOCK_RETURN_IF_ERROR(ParseNotifications(top, &config));
  AIRLOCK_RETURN_IF_ERROR(ParseConsole(top, &config.console));
  AIRLOCK_RETURN_IF_ERROR(ParseMcp(top, &config));
  AIRLOCK_RETURN_IF_ERROR(ParseCatalog(top, &config.catalog));
  top.Child("$schema");
  top.Child("description");
  AIRLOCK_RETURN_IF_ERROR(top.RejectUnknownKeys());
  return config;
}

Result<std::string> AgentForDatasets(const KernelConfig& config,
                                     const std::vector<std::string>& datasets) {
  std::optional<std::string> agent;
  for (const auto& name : datasets) {
    for (const auto& d : config.datasets) {
      if (d.name != name) continue;
      auto it = config.connectors.find(d.connector);
      const std::string bound = it == config.connectors.end() ? "" : it->second.agent;
      if (agent && *agent != bound) {
        return Status::InvalidArgument(
            "the datasets live on different hosts (" +
            (agent->empty() ? std::string("the kernel's") : "agent '" + *agent + "'") + " and " +
            (bound.empty() ? std::string("the kernel's") : "agent '" + bound + "'") +
            "); one request's enclave runs on one host");
      }
      agent = bound;
    }
  }
  return agent.value_or("");
}

Result<KernelConfig> LoadKernelConfig(const std::string& path,
                                      const std::string& default_plugin_dir) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read configuration file " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!JsonNestingWithin(buffer.str(), kMaxConfigDepth)) {
    return Status::InvalidArgument("configuration file " + path + " nests deeper than " +
                                   std::to_string(kMaxConfigDepth) + " levels");
  }
  auto document = ParseStrictJson(buffer.str(), "configuration file " + path);
  if (!document.ok()) return document.status();
  auto parsed = ParseKernelConfig(*document, path, default_plugin_dir);
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return parsed;
}

}  // namespace airlock
