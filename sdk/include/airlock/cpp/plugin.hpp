// The C++ plugin layer: write an ordinary class per plugin kind, register it
// with one macro, and this header generates the C ABI entry point and function
// table. Every shim catches every exception, so none crosses the boundary.
//
//   class MyConnector : public airlock::sdk::Connector {
//    public:
//     static airlock::Result<std::unique_ptr<MyConnector>> Create(
//         const airlock::Json& config, const airlock::sdk::Host& host);
//     airlock::Result<airlock::Catalog> Describe() override;
//     airlock::Status Pull(const airlock::PullSpec& spec, airlock::sdk::BatchSink& sink) override;
//   };
//   AIRLOCK_CONNECTOR_PLUGIN(MyConnector, "my-connector", "1.0.0", "What it reads", nullptr)
//
// Exactly one plugin per shared object. See docs/sdk.md.
#pragma once

#include <cctype>
#include <concepts>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::sdk {

// ---------------------------------------------------------------------------
// Kind interfaces.

// A read-only view of the HTTP request being authenticated (valid for the call).
struct HttpRequestView {
  std::string_view method;
  std::string_view target;
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view remote_address;
  std::string_view peer_certificate_pem;

  // Case-insensitive header lookup; empty when absent.
  std::string_view Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key.size() != name.size()) continue;
      bool same = true;
      for (size_t i = 0; i < key.size() && same; ++i) {
        same = std::tolower(static_cast<unsigned char>(key[i])) ==
               std::tolower(static_cast<unsigned char>(name[i]));
      }
      if (same) return value;
    }
    return {};
  }
};

class IdentityProvider {
 public:
  virtual ~IdentityProvider() = default;
  // ok: the principal. kNotApplicable: no credential of this provider's kind
  // (the kernel tries the next provider). kUnauthenticated: refused, with why.
  virtual Result<Principal> Authenticate(const HttpRequestView& request) = 0;
};

class PolicyBackend {
 public:
  virtual ~PolicyBackend() = default;
  virtual Result<Decision> Evaluate(const PolicyInput& input) = 0;
  // Replaces the policy; on failure the old one stays in force.
  virtual Status Reload(const Json& /*config*/) {
    return Status::NotImplemented("this policy backend does not reload");
  }
};

class Connector {
 public:
  virtual ~Connector() = default;
  virtual Result<Catalog> Describe() = 0;
  // Delivers only the scoped columns and rows of spec.dataset into `sink`:
  // one SendSchema, then batches. Poll sink.cancelled() between batches.
  virtual Status Pull(const PullSpec& spec, BatchSink& sink) = 0;
};

// The tunnel's handle on a sealed enclave (host-implemented; audited by the host).
class QueryChannel {
 public:
  QueryChannel() = default;
  explicit QueryChannel(const airlock_type_query_channel* channel) : channel_(channel) {}

  Status Query(std::string_view sql, BatchConsumer& consumer) const {
    if (channel_ == nullptr) return Status::Unavailable("tunnel is closed");
    airlock_type_batch_sink sink = MakeBatchSink(consumer);
    abi::ErrorHolder error;
    const airlock_type_status rc =
        channel_->query(channel_->host_data, sql.data(), sql.size(), &sink, error.get());
    return error.ToStatus(rc, "query failed");
  }

  Result<Json> Tables() const {
    if (channel_ == nullptr) return Status::Unavailable("tunnel is closed");
    if (!AIRLOCK_ABI_HAS(channel_, airlock_type_query_channel, tables) ||
        channel_->tables == nullptr) {
      return Status::NotImplemented("host offers no schema browsing");
    }
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    const airlock_type_status rc = channel_->tables(channel_->host_data, buffer.get(), error.get());
    if (rc != AIRLOCK_OK) return error.ToStatus(rc, "schema browsing failed");
    return json_read::Parse(buffer.view(), "tables document");
  }

 private:
  const airlock_type_query_channel* channel_ = nullptr;
};

// Why the host closes an endpoint (airlock_type_close_reason).
enum class CloseReason { kRevoked, kWindowEnded, kShutdown, kFailed };

// The reason for an ABI value; unknown values read as kRevoked.
inline CloseReason CloseReasonFromAbi(airlock_type_close_reason reason) {
  switch (reason) {
    case AIRLOCK_CLOSE_WINDOW_ENDED:
      return CloseReason::kWindowEnded;
    case AIRLOCK_CLOSE_SHUTDOWN:
      return CloseReason::kShutdown;
    case AIRLOCK_CLOSE_FAILED:
      return CloseReason::kFailed;
    default:
      return CloseReason::kRevoked;
  }
}

// One published endpoint. Destroying it revokes it at once (drops open
// connections, refuses later use) before the destructor returns.
class TunnelEndpoint {
 public:
  virtual ~TunnelEndpoint() = default;
  // Called once, right before the endpoint is destroyed, by hosts that say
  // why they close it (ABI 1.1 and later); an older host only destroys it,
  // which means kRevoked. Tell connected clients and later attempts the
  // reason.
  virtual void SetCloseReason(CloseReason /*reason*/) {}
  // The requester's window was extended to `not_after` (Unix seconds, later
  // than the current one): keep accepting the same credential until then.
  // An endpoint that cannot answers NotImplemented, and the kernel refuses
  // the extension.
  virtual Status ExtendWindow(int64_t /*not_after*/) {
    return Status::NotImplemented("this tunnel cannot extend a window");
  }
};

struct TunnelOpening {
  std::unique_ptr<TunnelEndpoint> endpoint;
  Json grant;  // {"url", "credential", ...}: shown to the requester once
};

class TunnelTransport {
 public:
  virtual ~TunnelTransport() = default;
  // `endpoint_spec`: {"request_id","principal":{...},"not_after"}.
  virtual Result<TunnelOpening> Open(const Json& endpoint_spec, QueryChannel channel) = 0;
};

// One running enclave, as its isolator tracks it.
class Enclave {
 public:
  virtual ~Enclave() = default;
};

struct EnclaveLaunch {
  int control_fd = -1;  // handed to the host
  std::unique_ptr<Enclave> enclave;
};

class Isolator {
 public:
  virtual ~Isolator() = default;
  virtual Result<EnclaveLaunch> Provision(const Json& spec) = 0;
  // Kills the enclave and wipes its memory. The enclave object is destroyed
  // right after this returns.
  virtual Status Terminate(Enclave& enclave) = 0;
  virtual Json DescribeIsolation() = 0;
  virtual Status ReapOrphans() { return Status::Ok(); }
};

// What the kernel asks a notifier to carry (airlock_type_notifier_vtable):
// the whole document, plus the members every notifier needs.
struct Notification {
  Json document;
  std::string id;        // the idempotency key: the same on every attempt
  std::string event;     // "request.pending_approval", "request.ready", ...
  std::string audience;  // "approvers" or "requester"
};

// Status codes a notifier returns: Ok once the receiver accepted the
// notification; Unavailable, DeadlineExceeded or ResourceExhausted to be
// tried again later; anything else when the receiver refused it for good.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual Status Deliver(const Notification& notification) = 0;
};

// ---------------------------------------------------------------------------
// Shims: C ABI -> C++ classes. Everything below is generated per plugin.

namespace detail {

// The host table handed to the entry point; one per loaded library.
inline const airlock_host_services*& HostServices() {
  static const airlock_host_services* services = nullptr;
  return services;
}

inline std::string& PluginName() {
  static std::string name;
  return name;
}

inline Host CurrentHost() {
  return Host(HostServices(), PluginName());
}

inline airlock_type_status Catch(airlock_type_error* error) {
  try {
    throw;
  } catch (const std::exception& e) {
    abi::FillError(error, std::string("plugin raised an exception: ") + e.what());
  } catch (...) {
    abi::FillError(error, "plugin raised an unknown exception");
  }
  return AIRLOCK_ERR_INTERNAL;
}

// The host's annotations of a plugin configuration: keys starting with '$'.
//   "$config_dir"   directory relative paths are resolved against
//   "$state_dir"    a directory private to this plugin instance inside the
//                   kernel's (or agent's) state directory
//   "$instance_id"  the identity of the kernel (or agent) instance: stable
//                   across its restarts, different for every other instance
// Each is absent when the host does not give it.
struct HostAnnotations {
  std::string config_dir;
  std::string state_dir;
  std::string instance_id;
};

// Removes every '$'-prefixed key from a configuration object and returns the
// annotations among them.
inline HostAnnotations StripHostAnnotations(Json& config) {
  HostAnnotations out;
  if (!config.is_object()) return out;
  const auto read = [&config](const char* key, std::string* value) {
    if (auto it = config.find(key); it != config.end() && it->is_string()) {
      *value = it->get<std::string>();
    }
  };
  read("$config_dir", &out.config_dir);
  read("$state_dir", &out.state_dir);
  read("$instance_id", &out.instance_id);
  for (auto it = config.begin(); it != config.end();) {
    if (!it.key().empty() && it.key()[0] == '$') {
      it = config.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

template <typename Impl>
airlock_type_status Create(const char* config, size_t length, void** instance,
                           airlock_type_error* error) {
  try {
    *instance = nullptr;
    Json parsed = Json::object();
    if (length > 0) {
      auto result = json_read::Parse(std::string_view(config, length), "plugin configuration");
      if (!result.ok()) return abi::Report(result.status(), error);
      parsed = std::move(result).value();
    }
    // Keys starting with '$' are the host's annotations, not plugin settings
    // (HostAnnotations); all are removed before the plugin sees its configuration.
    Host host = CurrentHost();
    HostAnnotations annotations = StripHostAnnotations(parsed);
    host.set_config_dir(std::move(annotations.config_dir));
    host.set_state_dir(std::move(annotations.state_dir));
    host.set_instance_id(std::move(annotations.instance_id));
    auto made = Impl::Create(parsed, host);
    if (!made.ok()) return abi::Report(made.status(), error);
    *instance = std::move(made).value().release();
    return AIRLOCK_OK;
  } catch (...) {
    return Catch(error);
  }
}

template <typename Impl>
airlock_type_status CheckConfig(const char* config, size_t length, airlock_type_error* error) {
  try {
    Json parsed = Json::object();
    if (length > 0) {
      auto result = json_read::Parse(std::string_view(config, length), "plugin configuration");
      if (!result.ok()) return abi::Report(result.status(), error);
      parsed = std::move(result).value();
    }
    Host host = CurrentHost();
    HostAnnotations annotations = StripHostAnnotations(parsed);
    host.set_config_dir(std::move(annotations.config_dir));
    host.set_state_dir(std::move(annotations.state_dir));
    host.set_instance_id(std::move(annotations.instance_id));
    return abi::Report(Impl::CheckConfig(parsed, host), error);
  } catch (...) {
    return Catch(error);
  }
}

// The manifest's check_config: set when Impl declares
// `static Status CheckConfig(const Json& config, const Host& host)`, which
// must refuse what Create would refuse without starting anything.
template <typename Impl>
constexpr airlock_on_check_config_plugin_ptr CheckConfigFor() {
  if constexpr (requires(const Json& config, const Host& host) {
                  { Impl::CheckConfig(config, host) } -> std::same_as<Status>;
                }) {
    return &CheckConfig<Impl>;
  } else {
    return nullptr;
  }
}

template <typename Impl>
void Destroy(void* instance) {
  try {
    std::unique_ptr<Impl> owned(static_cast<Impl*>(instance));
  } catch (...) {
  }
}

// --- identity --------------------------------------------------------------

template <typename Impl>
struct IdentityShim {
  static airlock_type_status Authenticate(void* instance, const airlock_type_http_request_view* raw,
                                          airlock_type_buffer* principal,
                                          airlock_type_error* error) {
    try {
      HttpRequestView view;
      view.method = {raw->method, raw->method_length};
      view.target = {raw->target, raw->target_length};
      view.headers.reserve(raw->header_count);
      for (size_t i = 0; i < raw->header_count; ++i) {
        const auto& h = raw->headers[i];
        view.headers.emplace_back(std::string_view(h.name, h.name_length),
                                  std::string_view(h.value, h.value_length));
      }
      view.remote_address = {raw->remote_address, raw->remote_address_length};
      if (AIRLOCK_ABI_HAS(raw, airlock_type_http_request_view, peer_certificate_pem_length) &&
          raw->peer_certificate_pem != nullptr) {
        view.peer_certificate_pem = {raw->peer_certificate_pem, raw->peer_certificate_pem_length};
      }
      auto result = static_cast<Impl*>(instance)->Authenticate(view);
      if (!result.ok()) return abi::Report(result.status(), error);
      abi::FillBuffer(principal, result->ToJson().dump());
      return AIRLOCK_OK;
    } catch (...) {
      return Catch(error);
    }
  }
  static const airlock_type_identity_vtable* Table() {
    static const airlock_type_identity_vtable table = {
        sizeof(airlock_type_identity_vtable), &Create<Impl>, &Destroy<Impl>, &Authenticate};
    return &table;
  }
};

// --- policy ----------------------------------------------------------------

template <typename Impl>
struct PolicyShim {
  static airlock_type_status Evaluate(void* instance, const char* input, size_t length,
                                      airlock_type_buffer* decision, airlock_type_error* error) {
    try {
      auto parsed = json_read::Parse(std::string_view(input, length), "policy input");
      if (!parsed.ok()) return abi::Report(parsed.status(), error);
      auto typed = PolicyInput::FromJson(*parsed);
      if (!typed.ok()) return abi::Report(typed.status(), error);
      auto result = static_cast<Impl*>(instance)->Evaluate(*typed);
      if (!result.ok()) return abi::Report(result.status(), error);
      abi::FillBuffer(decision, result->ToJson().dump());
      return AIRLOCK_OK;
    } catch (...) {
      return Catch(error);
    }
  }
  static airlock_type_status Reload(void* instance, const char* config, size_t length,
                                    airlock_type_error* error) {
    try {
      auto parsed = json_read::Parse(std::string_view(config, length), "policy configuration");
      if (!parsed.ok()) return abi::Report(parsed.status(), error);
      StripHostAnnotations(*parsed);
      return abi::Report(static_cast<Impl*>(instance)->Reload(*parsed), error);
    } catch (...) {
      return Catch(error);
    }
  }
  static const airlock_type_policy_vtable* Table() {
    static const airlock_type_policy_vtable table = {
        sizeof(airlock_type_policy_vtable), &Create<Impl>, &Destroy<Impl>, &Evaluate, &Reload};
    return &table;
  }
};

// --- connector -------------------------------------------------------------

template <typename Impl>
struct ConnectorShim {
  static airlock_type_status Describe(void* instance, airlock_type_buffer* catalog,
                                      airlock_type_error* error) {
    try {
      auto result = static_cast<Impl*>(instance)->Describe();
      if (!result.ok()) return abi::Report(result.status(), error);
      abi::FillBuffer(catalog, result->ToJson().dump());
      return AIRLOCK_OK;
    } catch (...) {
      return Catch(error);
    }
  }
  static airlock_type_status Pull(void* instance, const char* spec_json, size_t length,
                                  const airlock_type_batch_sink* sink, airlock_type_error* error) {
    try {
      auto parsed = json_read::Parse(std::string_view(spec_json, length), "pull spec");
      if (!parsed.ok()) return abi::Report(parsed.status(), error);
      auto spec = PullSpec::FromJson(*parsed);
      if (!spec.ok()) return abi::Report(spec.status(), error);
      BatchSink wrapped(sink);
      return abi::Report(static_cast<Impl*>(instance)->Pull(*spec, wrapped), error);
    } catch (...) {
      return Catch(error);
    }
  }
  static const airlock_type_connector_vtable* Table() {
    static const airlock_type_connector_vtable table = {
        sizeof(airlock_type_connector_vtable), &Create<Impl>, &Destroy<Impl>, &Describe, &Pull};
    return &table;
  }
};

// --- tunnel ----------------------------------------------------------------

template <typename Impl>
struct TunnelShim {
  static airlock_type_status Open(void* instance, const char* spec_json, size_t length,
                                  const airlock_type_query_channel* channel, void** endpoint,
                                  airlock_type_buffer* grant, airlock_type_error* error) {
    try {
      *endpoint = nullptr;
      auto parsed = json_read::Parse(std::string_view(spec_json, length), "endpoint spec");
      if (!parsed.ok()) return abi::Report(parsed.status(), error);
      auto opened = static_cast<Impl*>(instance)->Open(*parsed, QueryChannel(channel));
      if (!opened.ok()) return abi::Report(opened.status(), error);
      abi::FillBuffer(grant, opened->grant.dump());
      *endpoint = opened->endpoint.release();
      return AIRLOCK_OK;
    } catch (...) {
      return Catch(error);
    }
  }
  static void Close(void* /*instance*/, void* endpoint) {
    try {
      std::unique_ptr<TunnelEndpoint> owned(static_cast<TunnelEndpoint*>(endpoint));
    } catch (...) {
    }
  }
  static void CloseWithReason(void* /*instance*/, void* endpoint,
                              airlock_type_close_reason reason) {
    try {
      std::unique_ptr<TunnelEndpoint> owned(static_cast<TunnelEndpoint*>(endpoint));
      if (owned) owned->SetCloseReason(CloseReasonFromAbi(reason));
    } catch (...) {
    }
  }
  static airlock_type_status Extend(void* /*instance*/, void* endpoint, int64_t not_after,
                                    airlock_type_error* error) {
    try {
      if (endpoint == nullptr) {
        return abi::Report(Status::InvalidArgument("no endpoint to extend"), error);
      }
      const Status s = static_cast<TunnelEndpoint*>(endpoint)->ExtendWindow(not_after);
      if (!s.ok()) return abi::Report(s, error);
      return AIRLOCK_OK;
    } catch (...) {
      return Catch(error);
    }
  }
  static const airlock_type_tunnel_vtable* Table() {
    static const airlock_type_tunnel_vtable table = {sizeof(airlock_type_tunnel_vtable),
                                                     &Create<Impl>,
                                                     &Destroy<Impl>,
                                                     &Open,
                                                     &Close,
                                                     &CloseWithReason,
                                                     &Extend};
    return &table;
  }
};

// --- isolator --------------------------------------------------------------

template <typename Impl>
struct IsolatorShim {
  static airlock_type_status Provision(void* instance, const char* spec_json, size_t length,
                                       airlock_type_enclave_launch* launch,
                                       airlock_type_error* error) {
    try {
      auto parsed = json_read::Parse(std::string_view(spec_json, length), "enclave spec");
      if (!parsed.ok()) return abi::Report(parsed.status(), error);
      auto made = static_cast<Impl*>(instance)->Provision(*parsed);
      if (!made.ok()) return abi::Report(made.status(), error);
      launch->control_fd = made->control_fd;
      launch->enclave = made->enclave.release();
      return AIRLOCK_OK;
    } catch (...) {
      return Catch(error);
    }
  }
  static airlock_type_status Terminate(void* instance, void* enclave, airlock_type_error* error) {
    try {
      std::unique_ptr<Enclave> owned(static_cast<Enclave*>(enclave));
      if (!owned) return AIRLOCK_OK;
      return abi::Report(static_cast<Impl*>(instance)->Terminate(*owned), error);
    } catch (...) {
      return Catch(error);
    }
  }
  static airlock_type_status Describe(void* instance, airlock_type_buffer* description,
                                      airlock_type_error* error) {
    try {
      abi::FillBuffer(description, static_cast<Impl*>(instance)->DescribeIsolation().dump());
      return AIRLOCK_OK;
    } catch (...) {
      return Catch(error);
    }
  }
  static airlock_type_status Reap(void* instance, airlock_type_error* error) {
    try {
      return abi::Report(static_cast<Impl*>(instance)->ReapOrphans(), error);
    } catch (...) {
      return Catch(error);
    }
  }
  static const airlock_type_isolator_vtable* Table() {
    static const airlock_type_isolator_vtable table = {sizeof(airlock_type_isolator_vtable),
                                                       &Create<Impl>,
                                                       &Destroy<Impl>,
                                                       &Provision,
                                                       &Terminate,
                                                       &Describe,
                                                       &Reap};
    return &table;
  }
};

// --- notifier --------------------------------------------------------------

template <typename Impl>
struct NotifierShim {
  static airlock_type_status Deliver(void* instance, const char* document, size_t length,
                                     airlock_type_error* error) {
    try {
      auto parsed = json_read::Parse(std::string_view(document, length), "notification");
      if (!parsed.ok()) return abi::Report(parsed.status(), error);
      if (!parsed->is_object()) {
        return abi::Report(Status::InvalidArgument("notification is not a JSON object"), error);
      }
      Notification notification;
      notification.id = parsed->value("id", "");
      notification.event = parsed->value("event", "");
      notification.audience = parsed->value("audience", "");
      if (notification.id.empty() || notification.event.empty()) {
        return abi::Report(Status::InvalidArgument("notification has no id or no event"), error);
      }
      notification.document = std::move(parsed).value();
      return abi::Report(static_cast<Impl*>(instance)->Deliver(notification), error);
    } catch (...) {
      return Catch(error);
    }
  }
  static const airlock_type_notifier_vtable* Table() {
    static const airlock_type_notifier_vtable table = {sizeof(airlock_type_notifier_vtable),
                                                       &Create<Impl>, &Destroy<Impl>, &Deliver};
    return &table;
  }
};

// The body of every generated entry point.
inline airlock_type_status Entry(const airlock_host_services* host,
                                 const airlock_type_plugin_info** info, airlock_type_error* error,
                                 const airlock_type_plugin_info* manifest) {
  try {
    if (host == nullptr || host->abi_major != AIRLOCK_ABI_MAJOR) {
      abi::FillError(error, "host speaks another ABI major version");
      return AIRLOCK_ERR_NOT_IMPLEMENTED;
    }
    // The first host to enter binds the library to its services table; later
    // entries (a second loader in the same process) reuse it, so entering is
    // idempotent and free of data races.
    static std::once_flag bound;
    std::call_once(bound, [&] {
      HostServices() = host;
      PluginName() = manifest->name;
    });
    *info = manifest;
    return AIRLOCK_OK;
  } catch (...) {
    return Catch(error);
  }
}

}  // namespace detail
}  // namespace airlock::sdk

// Defines the exported entry point of a plugin of the given kind.
#define AIRLOCK_DEFINE_PLUGIN_(Shim, Impl, kind_value, name_literal, version_literal, \
                               description_literal, schema_literal)                   \
  extern "C" AIRLOCK_EXPORT airlock_type_status airlock_plugin_entry_v1(              \
      const airlock_host_services* host, const airlock_type_plugin_info** info,       \
      airlock_type_error* error) {                                                    \
    static const airlock_type_plugin_info kManifest = {                               \
        sizeof(airlock_type_plugin_info),                                             \
        AIRLOCK_ABI_MAJOR,                                                            \
        AIRLOCK_ABI_MINOR,                                                            \
        kind_value,                                                                   \
        name_literal,                                                                 \
        version_literal,                                                              \
        description_literal,                                                          \
        schema_literal,                                                               \
        ::airlock::sdk::detail::Shim<Impl>::Table(),                                  \
        ::airlock::sdk::detail::CheckConfigFor<Impl>()};                              \
    return ::airlock::sdk::detail::Entry(host, info, error, &kManifest);              \
  }

#define AIRLOCK_IDENTITY_PLUGIN(Impl, name, version, description, schema)                       \
  AIRLOCK_DEFINE_PLUGIN_(IdentityShim, Impl, AIRLOCK_KIND_IDENTITY, name, version, description, \
                         schema)
#define AIRLOCK_POLICY_PLUGIN(Impl, name, version, description, schema) \
  AIRLOCK_DEFINE_PLUGIN_(PolicyShim, Impl, AIRLOCK_KIND_POLICY, name, version, description, schema)
#define AIRLOCK_CONNECTOR_PLUGIN(Impl, name, version, description, schema)                        \
  AIRLOCK_DEFINE_PLUGIN_(ConnectorShim, Impl, AIRLOCK_KIND_CONNECTOR, name, version, description, \
                         schema)
#define AIRLOCK_TUNNEL_PLUGIN(Impl, name, version, description, schema) \
  AIRLOCK_DEFINE_PLUGIN_(TunnelShim, Impl, AIRLOCK_KIND_TUNNEL, name, version, description, schema)
#define AIRLOCK_ISOLATOR_PLUGIN(Impl, name, version, description, schema)                       \
  AIRLOCK_DEFINE_PLUGIN_(IsolatorShim, Impl, AIRLOCK_KIND_ISOLATOR, name, version, description, \
                         schema)
#define AIRLOCK_NOTIFIER_PLUGIN(Impl, name, version, description, schema)                       \
  AIRLOCK_DEFINE_PLUGIN_(NotifierShim, Impl, AIRLOCK_KIND_NOTIFIER, name, version, description, \
                         schema)
