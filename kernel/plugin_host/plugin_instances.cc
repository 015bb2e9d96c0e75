#include "kernel/plugin_host/plugin_instances.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <string>

#include "airlock/cpp/abi_util.hpp"
#include "kernel/plugin_host/library_pin.h"

namespace airlock::plugin_host {
namespace {

constexpr size_t kMaxPrincipalBytes = 64 * 1024;
constexpr size_t kMaxDecisionBytes = 1024 * 1024;
constexpr size_t kMaxGrantBytes = 64 * 1024;
constexpr size_t kMaxIsolationBytes = 64 * 1024;

std::string PluginLabel(const PluginManifest& manifest) {
  return "plugin " + manifest.name;
}

// A failure the plugin reported: its code, its message, the plugin's name.
Status FromPlugin(const InstanceHolder& holder, airlock_type_status rc,
                  const abi::ErrorHolder& error, const char* operation) {
  std::string message = error.message();
  if (message.empty()) message = std::string(operation) + " failed";
  return Status(StatusCodeFromAbi(rc), PluginLabel(holder.manifest()) + ": " + message);
}

Status Invalid(const InstanceHolder& holder, const char* thing, const std::string& why) {
  return Status::Internal(PluginLabel(holder.manifest()) + " returned an invalid " + thing + ": " +
                          why);
}

// Parses a document a plugin handed back. Never quotes the document (it may
// hold a credential).
Result<Json> ReadDocument(const InstanceHolder& holder, const abi::BufferHolder& buffer,
                          const char* thing, size_t max_bytes) {
  const std::string_view text = buffer.view();
  if (text.data() == nullptr) return Invalid(holder, thing, "no document");
  if (text.size() > max_bytes) {
    return Invalid(holder, thing,
                   std::to_string(text.size()) + " bytes, more than " + std::to_string(max_bytes));
  }
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Invalid(holder, thing, "not valid JSON");
  return parsed;
}

std::string Dump(const Json& document) {
  return document.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Status CheckKind(const PluginLibrary& library, airlock_type_plugin_kind kind) {
  if (library.manifest().kind != kind) {
    return Status::InvalidArgument(PluginLabel(library.manifest()) + " is " +
                                   PluginKindPhrase(library.manifest().kind) + ", not " +
                                   PluginKindPhrase(kind));
  }
  return Status::Ok();
}

Result<std::shared_ptr<InstanceHolder>> MakeHolder(const std::shared_ptr<PluginLibrary>& library,
                                                   airlock_type_plugin_kind kind,
                                                   const nlohmann::json& config) {
  if (library == nullptr) return Status::InvalidArgument("no plugin library");
  AIRLOCK_RETURN_IF_ERROR(CheckKind(*library, kind));
  return InstanceHolder::Create(library, config);
}

// Every kind's table starts with these members (see airlock_plugin.h).
struct CommonTable {
  size_t size;
  airlock_on_create_plugin_ptr create;
  airlock_on_destroy_plugin_ptr destroy;
};
static_assert(offsetof(CommonTable, create) == offsetof(airlock_type_identity_vtable, create));
static_assert(offsetof(CommonTable, destroy) == offsetof(airlock_type_identity_vtable, destroy));
static_assert(offsetof(CommonTable, destroy) == offsetof(airlock_type_policy_vtable, destroy));
static_assert(offsetof(CommonTable, destroy) == offsetof(airlock_type_connector_vtable, destroy));
static_assert(offsetof(CommonTable, destroy) == offsetof(airlock_type_tunnel_vtable, destroy));
static_assert(offsetof(CommonTable, destroy) == offsetof(airlock_type_isolator_vtable, destroy));
static_assert(offsetof(CommonTable, destroy) == offsetof(airlock_type_notifier_vtable, destroy));

}  // namespace

// ---------------------------------------------------------------------------
// InstanceHolder

Result<std::shared_ptr<InstanceHolder>> InstanceHolder::Create(
    std::shared_ptr<PluginLibrary> library, const nlohmann::json& config) {
  if (library == nullptr) return Status::InvalidArgument("no plugin library");
  const auto& table = library->table<CommonTable>();
  std::string text;
  try {
    text = Dump(config);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(PluginLabel(library->manifest()) +
                                   ": configuration cannot be serialised: " + e.what());
  }
  void* instance = nullptr;
  abi::ErrorHolder error;
  const airlock_type_status rc = table.create(text.data(), text.size(), &instance, error.get());
  if (rc != AIRLOCK_OK) {
    std::string message = error.message();
    if (message.empty()) message = "create failed";
    return Status(StatusCodeFromAbi(rc), PluginLabel(library->manifest()) + ": " + message);
  }
  return std::shared_ptr<InstanceHolder>(new InstanceHolder(std::move(library), instance));
}

Status CheckPluginConfig(const PluginLibrary& library, const nlohmann::json& config) {
  if (library.check_config() == nullptr) {
    return Status::NotImplemented(PluginLabel(library.manifest()) +
                                  " has no configuration check (built for ABI " +
                                  std::to_string(library.manifest().abi_major) + "." +
                                  std::to_string(library.manifest().abi_minor) + ")");
  }
  std::string text;
  try {
    text = Dump(config);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(PluginLabel(library.manifest()) +
                                   ": configuration cannot be serialised: " + e.what());
  }
  abi::ErrorHolder error;
  const airlock_type_status rc = library.check_config()(text.data(), text.size(), error.get());
  if (rc == AIRLOCK_OK) return Status::Ok();
  std::string message = error.message();
  if (message.empty()) message = "configuration refused";
  return Status(StatusCodeFromAbi(rc), PluginLabel(library.manifest()) + ": " + message);
}

InstanceHolder::~InstanceHolder() {
  library_->table<CommonTable>().destroy(instance_);
}

// ---------------------------------------------------------------------------
// Identity

Result<std::unique_ptr<IdentityPlugin>> IdentityPlugin::Create(
    std::shared_ptr<PluginLibrary> library, const nlohmann::json& config) {
  AIRLOCK_ASSIGN_OR_RETURN(auto holder, MakeHolder(library, AIRLOCK_KIND_IDENTITY, config));
  return std::unique_ptr<IdentityPlugin>(new IdentityPlugin(std::move(holder)));
}

Result<Principal> IdentityPlugin::Authenticate(
    const airlock_type_http_request_view& request) const {
  airlock_type_http_request_view view = request;
  view.size = sizeof(view);
  const auto& table = holder_->table<airlock_type_identity_vtable>();
  abi::BufferHolder principal;
  abi::ErrorHolder error;
  const airlock_type_status rc =
      table.authenticate(holder_->instance(), &view, principal.get(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "authenticate");
  AIRLOCK_ASSIGN_OR_RETURN(Json document,
                           ReadDocument(*holder_, principal, "principal", kMaxPrincipalBytes));
  auto parsed = Principal::FromJson(document);
  if (!parsed.ok()) return Invalid(*holder_, "principal", parsed.status().message());
  Principal result = std::move(parsed).value();
  result.provider = holder_->manifest().name;  // a plugin cannot vouch in another's name
  return result;
}

// ---------------------------------------------------------------------------
// Policy

Result<std::unique_ptr<PolicyPlugin>> PolicyPlugin::Create(std::shared_ptr<PluginLibrary> library,
                                                           const nlohmann::json& config) {
  AIRLOCK_ASSIGN_OR_RETURN(auto holder, MakeHolder(library, AIRLOCK_KIND_POLICY, config));
  return std::unique_ptr<PolicyPlugin>(new PolicyPlugin(std::move(holder)));
}

Result<Decision> PolicyPlugin::Evaluate(const PolicyInput& input) const {
  const std::string text = Dump(input.ToJson());
  const auto& table = holder_->table<airlock_type_policy_vtable>();
  abi::BufferHolder decision;
  abi::ErrorHolder error;
  const airlock_type_status rc =
      table.evaluate(holder_->instance(), text.data(), text.size(), decision.get(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "evaluate");
  AIRLOCK_ASSIGN_OR_RETURN(Json document,
                           ReadDocument(*holder_, decision, "decision", kMaxDecisionBytes));
  auto parsed = Decision::FromJson(document);
  if (!parsed.ok()) return Invalid(*holder_, "decision", parsed.status().message());
  return std::move(parsed).value();
}

Status PolicyPlugin::Reload(const nlohmann::json& config) const {
  if (!AIRLOCK_VTABLE_HAS(holder_->library(), airlock_type_policy_vtable, reload)) {
    return Status::NotImplemented(PluginLabel(holder_->manifest()) + " does not reload");
  }
  const std::string text = Dump(config);
  abi::ErrorHolder error;
  const airlock_type_status rc = holder_->table<airlock_type_policy_vtable>().reload(
      holder_->instance(), text.data(), text.size(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "reload");
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Connector

Result<std::unique_ptr<ConnectorPlugin>> ConnectorPlugin::Create(
    std::shared_ptr<PluginLibrary> library, const nlohmann::json& config) {
  AIRLOCK_ASSIGN_OR_RETURN(auto holder, MakeHolder(library, AIRLOCK_KIND_CONNECTOR, config));
  return std::unique_ptr<ConnectorPlugin>(new ConnectorPlugin(std::move(holder)));
}

Result<Catalog> ConnectorPlugin::Describe() const {
  const auto& table = holder_->table<airlock_type_connector_vtable>();
  abi::BufferHolder catalog;
  abi::ErrorHolder error;
  const airlock_type_status rc = table.describe(holder_->instance(), catalog.get(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "describe");
  AIRLOCK_ASSIGN_OR_RETURN(Json document,
                           ReadDocument(*holder_, catalog, "catalog", kMaxPluginDocumentBytes));
  auto parsed = Catalog::FromJson(document);
  if (!parsed.ok()) return Invalid(*holder_, "catalog", parsed.status().message());
  return std::move(parsed).value();
}

namespace {

// Forwards to the caller's consumer with every schema and batch pinned to the
// plugin instance: their release callbacks are plugin code, so the library
// must stay mapped for as long as the consumer keeps any of them.
class PinningConsumer : public sdk::BatchConsumer {
 public:
  PinningConsumer(sdk::BatchConsumer& next, std::shared_ptr<const void> pin)
      : next_(next), pin_(std::move(pin)) {}
  Status OnSchema(arrow::OwnedSchema schema) override {
    return next_.OnSchema(PinToLibrary(std::move(schema), pin_));
  }
  Status OnBatch(arrow::OwnedArray batch) override {
    return next_.OnBatch(PinToLibrary(std::move(batch), pin_));
  }
  bool IsCancelled() override { return next_.IsCancelled(); }
  void OnProgress(uint64_t rows, uint64_t bytes) override { next_.OnProgress(rows, bytes); }

 private:
  sdk::BatchConsumer& next_;
  std::shared_ptr<const void> pin_;
};

}  // namespace

Status ConnectorPlugin::Pull(const PullSpec& spec, sdk::BatchConsumer& consumer) const {
  const std::string text = Dump(spec.ToJson());
  PinningConsumer pinning(consumer, holder_);
  const airlock_type_batch_sink sink = sdk::MakeBatchSink(pinning);
  abi::ErrorHolder error;
  const airlock_type_status rc = holder_->table<airlock_type_connector_vtable>().pull(
      holder_->instance(), text.data(), text.size(), &sink, error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "pull");
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Tunnel

TunnelEndpointHandle& TunnelEndpointHandle::operator=(TunnelEndpointHandle&& other) noexcept {
  if (this != &other) {
    Close();
    holder_ = std::move(other.holder_);
    endpoint_ = other.endpoint_;
    other.endpoint_ = nullptr;
  }
  return *this;
}

void TunnelEndpointHandle::Close(airlock_type_close_reason reason) {
  if (holder_ == nullptr) return;
  const auto& table = holder_->table<airlock_type_tunnel_vtable>();
  if (AIRLOCK_VTABLE_HAS(holder_->library(), airlock_type_tunnel_vtable, close_with_reason)) {
    table.close_with_reason(holder_->instance(), endpoint_, reason);
  } else {
    table.close(holder_->instance(), endpoint_);  // an ABI 1.0 plugin: it says "revoked"
  }
  endpoint_ = nullptr;
  holder_.reset();
}

Status TunnelEndpointHandle::Extend(int64_t not_after) {
  if (holder_ == nullptr) return Status::FailedPrecondition("the tunnel endpoint is closed");
  if (!AIRLOCK_VTABLE_HAS(holder_->library(), airlock_type_tunnel_vtable, extend)) {
    return Status::NotImplemented(PluginLabel(holder_->manifest()) + " cannot extend a window");
  }
  abi::ErrorHolder error;
  const auto rc = holder_->table<airlock_type_tunnel_vtable>().extend(
      holder_->instance(), endpoint_, not_after, error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "extend");
  return Status::Ok();
}

Result<std::unique_ptr<TunnelPlugin>> TunnelPlugin::Create(std::shared_ptr<PluginLibrary> library,
                                                           const nlohmann::json& config) {
  AIRLOCK_ASSIGN_OR_RETURN(auto holder, MakeHolder(library, AIRLOCK_KIND_TUNNEL, config));
  return std::unique_ptr<TunnelPlugin>(new TunnelPlugin(std::move(holder)));
}

Result<std::pair<std::unique_ptr<TunnelEndpointHandle>, nlohmann::json>> TunnelPlugin::Open(
    const nlohmann::json& spec, const airlock_type_query_channel* channel) const {
  if (channel == nullptr) return Status::InvalidArgument("tunnel open needs a query channel");
  const std::string text = Dump(spec);
  void* endpoint = nullptr;
  abi::BufferHolder grant;
  abi::ErrorHolder error;
  const airlock_type_status rc = holder_->table<airlock_type_tunnel_vtable>().open(
      holder_->instance(), text.data(), text.size(), channel, &endpoint, grant.get(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "open");
  // Owned from here on: any refusal below revokes the endpoint.
  auto handle = std::make_unique<TunnelEndpointHandle>(holder_, endpoint);
  AIRLOCK_ASSIGN_OR_RETURN(Json document, ReadDocument(*holder_, grant, "grant", kMaxGrantBytes));
  if (!document.is_object()) return Invalid(*holder_, "grant", "not a JSON object");
  if (auto url = document.find("url");
      url == document.end() || !url->is_string() || url->get_ref<const std::string&>().empty()) {
    return Invalid(*holder_, "grant", "\"url\" must be a non-empty string");
  }
  return std::make_pair(std::move(handle), std::move(document));
}

// ---------------------------------------------------------------------------
// Isolator

EnclaveHandle::~EnclaveHandle() {
  // The status is lost here; callers that care call Terminate() themselves.
  (void)Terminate();
  if (control_fd_ >= 0) ::close(control_fd_);
}

int EnclaveHandle::ReleaseControlFd() {
  const int fd = control_fd_;
  control_fd_ = -1;
  return fd;
}

Status EnclaveHandle::Terminate() {
  if (holder_ == nullptr) return Status::Ok();
  abi::ErrorHolder error;
  const airlock_type_status rc = holder_->table<airlock_type_isolator_vtable>().terminate(
      holder_->instance(), enclave_, error.get());
  // The enclave handle is invalid after terminate() whatever it returned.
  Status status = rc == AIRLOCK_OK ? Status::Ok() : FromPlugin(*holder_, rc, error, "terminate");
  enclave_ = nullptr;
  holder_.reset();
  if (control_fd_ >= 0) {
    ::close(control_fd_);
    control_fd_ = -1;
  }
  return status;
}

Result<std::unique_ptr<IsolatorPlugin>> IsolatorPlugin::Create(
    std::shared_ptr<PluginLibrary> library, const nlohmann::json& config) {
  AIRLOCK_ASSIGN_OR_RETURN(auto holder, MakeHolder(library, AIRLOCK_KIND_ISOLATOR, config));
  return std::unique_ptr<IsolatorPlugin>(new IsolatorPlugin(std::move(holder)));
}

Result<std::unique_ptr<EnclaveHandle>> IsolatorPlugin::Provision(const nlohmann::json& spec) const {
  const std::string text = Dump(spec);
  airlock_type_enclave_launch launch;
  std::memset(&launch, 0, sizeof(launch));
  launch.size = sizeof(launch);
  launch.control_fd = -1;
  abi::ErrorHolder error;
  const airlock_type_status rc = holder_->table<airlock_type_isolator_vtable>().provision(
      holder_->instance(), text.data(), text.size(), &launch, error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "provision");
  struct stat info;
  const bool open = launch.control_fd >= 0 && ::fstat(launch.control_fd, &info) == 0;
  const bool socket = open && S_ISSOCK(info.st_mode);
  // The host owns the descriptor once provision() returned OK, so an open
  // descriptor of the wrong type is closed here rather than leaked.
  if (open && !socket) ::close(launch.control_fd);
  // Owned from here on: a bad launch is terminated by the handle's destructor.
  auto handle =
      std::make_unique<EnclaveHandle>(holder_, launch.enclave, socket ? launch.control_fd : -1);
  if (!socket) {
    return Invalid(*holder_, "enclave launch",
                   "control_fd " + std::to_string(launch.control_fd) + " is not an open socket");
  }
  return handle;
}

Result<nlohmann::json> IsolatorPlugin::DescribeIsolation() const {
  abi::BufferHolder description;
  abi::ErrorHolder error;
  const airlock_type_status rc = holder_->table<airlock_type_isolator_vtable>().describe_isolation(
      holder_->instance(), description.get(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "describe_isolation");
  AIRLOCK_ASSIGN_OR_RETURN(
      Json document,
      ReadDocument(*holder_, description, "isolation description", kMaxIsolationBytes));
  if (!document.is_object()) return Invalid(*holder_, "isolation description", "not an object");
  if (auto it = document.find("isolation"); it == document.end() || !it->is_string()) {
    return Invalid(*holder_, "isolation description", "\"isolation\" must be a string");
  }
  return document;
}

Status IsolatorPlugin::ReapOrphans() const {
  if (!AIRLOCK_VTABLE_HAS(holder_->library(), airlock_type_isolator_vtable, reap_orphans)) {
    return Status::Ok();
  }
  abi::ErrorHolder error;
  const airlock_type_status rc =
      holder_->table<airlock_type_isolator_vtable>().reap_orphans(holder_->instance(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "reap_orphans");
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// NotifierPlugin

Result<std::unique_ptr<NotifierPlugin>> NotifierPlugin::Create(
    std::shared_ptr<PluginLibrary> library, const nlohmann::json& config) {
  AIRLOCK_ASSIGN_OR_RETURN(auto holder, MakeHolder(library, AIRLOCK_KIND_NOTIFIER, config));
  return std::unique_ptr<NotifierPlugin>(new NotifierPlugin(std::move(holder)));
}

Status NotifierPlugin::Deliver(std::string_view notification) const {
  abi::ErrorHolder error;
  const airlock_type_status rc = holder_->table<airlock_type_notifier_vtable>().deliver(
      holder_->instance(), notification.data(), notification.size(), error.get());
  if (rc != AIRLOCK_OK) return FromPlugin(*holder_, rc, error, "deliver");
  return Status::Ok();
}

}  // namespace airlock::plugin_host
