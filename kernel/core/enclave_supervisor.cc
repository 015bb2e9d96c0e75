#include "kernel/core/enclave_supervisor.h"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

#include <spdlog/spdlog.h>

#include "airlock/cpp/batch.hpp"
#include "kernel/audit/audit_log.h"
#include "kernel/common/crypto.h"
#include "kernel/core/connector_access.h"
#include "kernel/core/egress_dialer.h"
#include "kernel/core/job_results.h"
#include "kernel/core/metrics.h"
#include "kernel/core/tunnel_sink.h"
#include "kernel/enclave/enclave_client.h"
#include "kernel/plugin_host/plugin_instances.h"

namespace airlock {

using enclave::EnclaveClient;
using enclave::EnclaveEvents;
using nlohmann::json;
using plugin_host::EnclaveHandle;
using plugin_host::TunnelEndpointHandle;

// Shared by every request that has no progress yet (or no enclave).
std::shared_ptr<const json> EmptyProgress() {
  static const auto empty = std::make_shared<const json>(json::object());
  return empty;
}

// One approved request's live resources. Lives in the supervisor's map from
// Launch until Teardown; the query channel points at it, so it outlives the
// tunnel endpoint that uses the channel.
struct ActiveEnclave {
  explicit ActiveEnclave(boost::asio::thread_pool& pool) : strand(pool.get_executor()) {}

  std::string request_id;
  Principal requester;
  int64_t not_after_us = 0;
  std::string mode;
  boost::asio::strand<boost::asio::thread_pool::executor_type> strand;

  std::mutex mu;
  bool closed = false;                             // GUARDED_BY(mu)
  bool sealed = false;                             // GUARDED_BY(mu)
  std::unique_ptr<EnclaveHandle> handle;           // GUARDED_BY(mu)
  std::unique_ptr<RemoteEnclave> remote;           // GUARDED_BY(mu): on an agent's host
  std::shared_ptr<EnclaveClient> client;           // GUARDED_BY(mu)
  std::unique_ptr<TunnelEndpointHandle> endpoint;  // GUARDED_BY(mu)
  std::optional<json> grant;                       // GUARDED_BY(mu) until collected
  bool grant_collected = false;                    // GUARDED_BY(mu)
  // Replaced, never changed in place: readers keep the snapshot they got.
  std::shared_ptr<const json> progress = EmptyProgress();  // GUARDED_BY(mu)
  std::optional<EnclaveMemory> memory;                     // GUARDED_BY(mu): as last reported
  std::set<std::string> egress_allowed;                    // endpoints this request may reach
  // Job mode: open result files (by query index) and how each result ended.
  std::map<size_t, std::unique_ptr<JobResultWriter>> job_writers;  // GUARDED_BY(mu)
  std::map<size_t, json> job_outcomes;                             // GUARDED_BY(mu)
  std::vector<std::string> job_queries;
  // What the tunnel needs to accept the requester's credential again (a
  // hash, never the credential): set when a survivor provisions again the
  // enclave of a request whose credential was issued on another replica.
  std::string tunnel_verifier;

  airlock_type_query_channel channel{};
  EnclaveSupervisor* supervisor = nullptr;
  AuditLog* audit = nullptr;
  int64_t query_timeout_ms = 30000;
  std::string transport;
  bool audit_query_text = false;  // the policy's audit_query_text obligation
};

namespace {

// Passes a result on, counting its rows for the audit.
class RowCounter final : public sdk::BatchConsumer {
 public:
  explicit RowCounter(sdk::BatchConsumer& inner) : inner_(inner) {}
  Status OnSchema(arrow::OwnedSchema schema) override { return inner_.OnSchema(std::move(schema)); }
  Status OnBatch(arrow::OwnedArray batch) override {
    rows_ += static_cast<uint64_t>(batch.get()->length);
    return inner_.OnBatch(std::move(batch));
  }
  bool IsCancelled() override { return inner_.IsCancelled(); }
  uint64_t rows() const { return rows_; }

 private:
  sdk::BatchConsumer& inner_;
  uint64_t rows_ = 0;
};

// What an enclave reports of its memory ({"memory":{"data_bytes":N,
// "resident_bytes":N}}, the latter only from a process of its own); a
// report that is not two non-negative integers is ignored.
void RecordMemory(ActiveEnclave& active, const json& state) {
  const json* use = state.contains("memory") ? &state["memory"] : nullptr;
  if (use == nullptr || !use->is_object()) return;
  EnclaveMemory memory;
  for (auto [key, field] : {std::pair{"data_bytes", &memory.data_bytes},
                            std::pair{"resident_bytes", &memory.resident_bytes}}) {
    if (!use->contains(key)) continue;
    const json& value = (*use)[key];
    if (!value.is_number_unsigned() || value.get<uint64_t>() > uint64_t{1} << 50) return;
    *field = value.get<int64_t>();
  }
  std::lock_guard lock(active.mu);
  active.memory = memory;
}

// The enclave's client, or null and why there is none to query.
std::shared_ptr<EnclaveClient> ClientOf(ActiveEnclave* active, Status* why) {
  // A replica that cannot show it still holds its lease may have been taken
  // over: it answers nothing more from its enclaves.
  if (!active->supervisor->MayServe()) {
    *why = Status::Unavailable(
        "this kernel replica lost its lease; the request is served by another replica");
    return nullptr;
  }
  std::lock_guard lock(active->mu);
  if (active->closed || !active->sealed) {
    *why = Status::Unavailable("the request's enclave is closed");
    return nullptr;
  }
  return active->client;
}

// Every query of an enclave passes here and is audited, whatever the
// transport, and whichever replica the tunnel connection reached (`via`:
// the replica that forwarded it; empty when it came in here).
Status RunAuditedQuery(ActiveEnclave* active, std::string_view text, sdk::BatchConsumer& out,
                       const std::string& transport, const std::string& via) {
  const auto started = std::chrono::steady_clock::now();
  Status status;
  uint64_t rows = 0;
  try {
    auto client = ClientOf(active, &status);
    if (client) {
      RowCounter counter(out);
      status = client->Query(text, counter, std::chrono::milliseconds(active->query_timeout_ms));
      rows = counter.rows();
    }
  } catch (const std::exception& e) {
    status = Status::Internal("query failed inside the kernel");
  }
  const auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
  json event = {{"event", "tunnel.query"},
                {"request_id", active->request_id},
                {"principal",
                 {{"subject", active->requester.subject},
                  {"kind", PrincipalKindName(active->requester.kind)}}},
                {"transport", transport},
                {"sql_sha256", Sha256Hex(text)},
                {"rows", rows},
                {"duration_ms", elapsed.count()},
                {"outcome", status.ok() ? "ok" : StatusCodeName(status.code())}};
  if (!via.empty()) event["via_replica"] = via;
  if (active->audit_query_text) {
    // The policy asked for what was read to be kept; the grant said so.
    constexpr size_t kMaxAuditedText = 16 * 1024;
    event["sql"] = std::string(text.substr(0, kMaxAuditedText));
    if (text.size() > kMaxAuditedText) event["sql_truncated"] = true;
  }
  const Status audited = active->audit->Append(std::move(event));
  // Fail closed: a query whose access cannot be recorded is reported failed.
  if (!audited.ok()) return Status::Unavailable("audit log unavailable");
  return status;
}

// airlock_type_query_channel.query of this kernel's tunnel endpoints.
airlock_type_status ChannelQuery(void* host_data, const char* sql, size_t length,
                                 const airlock_type_batch_sink* sink, airlock_type_error* error) {
  auto* active = static_cast<ActiveEnclave*>(host_data);
  TunnelSinkConsumer out(sink);
  return abi::Report(
      RunAuditedQuery(active, std::string_view(sql, length), out, active->transport, ""), error);
}

airlock_type_status ChannelTables(void* host_data, airlock_type_buffer* tables,
                                  airlock_type_error* error) {
  auto* active = static_cast<ActiveEnclave*>(host_data);
  try {
    Status why;
    auto client = ClientOf(active, &why);
    if (!client) return abi::Report(why, error);
    auto result = client->Tables(std::chrono::milliseconds(active->query_timeout_ms));
    if (!result.ok()) return abi::Report(result.status(), error);
    abi::FillBuffer(tables, result->dump());
    return AIRLOCK_OK;
  } catch (...) {
    return abi::Report(Status::Internal("schema browsing failed inside the kernel"), error);
  }
}

}  // namespace

EnclaveSupervisor::EnclaveSupervisor(Dependencies deps)
    : deps_(std::move(deps)), pool_(4), dial_pool_(4) {}

EnclaveSupervisor::~EnclaveSupervisor() {
  Stop();
}

void EnclaveSupervisor::Stop() {
  TeardownAll("kernel shutting down", AIRLOCK_CLOSE_SHUTDOWN);
  pool_.join();
  dial_pool_.join();
  // Anything launched while draining.
  TeardownAll("kernel shutting down", AIRLOCK_CLOSE_SHUTDOWN);
}

void EnclaveSupervisor::Audit(json event) {
  const Status s = deps_.audit->Append(std::move(event));
  if (!s.ok()) spdlog::error("audit append failed: {}", s.ToString());
}

size_t EnclaveSupervisor::active() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

EnclaveMemory EnclaveSupervisor::memory() const {
  std::vector<std::shared_ptr<ActiveEnclave>> enclaves;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, active] : active_) enclaves.push_back(active);
  }
  EnclaveMemory sum;
  for (const auto& active : enclaves) {
    std::lock_guard lock(active->mu);
    if (!active->memory) continue;
    sum.data_bytes += active->memory->data_bytes;
    sum.resident_bytes += active->memory->resident_bytes;
    ++sum.reporting;
  }
  return sum;
}

std::vector<std::string> EnclaveSupervisor::ActiveIds() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  ids.reserve(active_.size());
  for (const auto& entry : active_) ids.push_back(entry.first);
  return ids;
}

std::shared_ptr<const json> EnclaveSupervisor::Progress(const std::string& id) const {
  std::shared_ptr<ActiveEnclave> active;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(id);
    if (it == active_.end()) return EmptyProgress();
    active = it->second;
  }
  std::lock_guard lock(active->mu);
  return active->progress;
}

Result<json> EnclaveSupervisor::TakeGrant(const std::string& id) {
  std::shared_ptr<ActiveEnclave> active;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(id);
    if (it == active_.end()) return Status::NotFound("the request has no open tunnel");
    active = it->second;
  }
  std::lock_guard lock(active->mu);
  if (active->grant_collected) {
    return Status::FailedPrecondition("the tunnel credential was already collected");
  }
  if (!active->grant) return Status::NotFound("the request has no open tunnel");
  json grant = std::move(*active->grant);
  active->grant.reset();
  active->grant_collected = true;
  return grant;
}

std::shared_ptr<ActiveEnclave> EnclaveSupervisor::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = active_.find(id);
  return it == active_.end() ? nullptr : it->second;
}

Status EnclaveSupervisor::ExtendWindow(const std::string& id, int64_t not_after_us) {
  const std::shared_ptr<ActiveEnclave> active = Find(id);
  if (!active) return Status::NotFound("request " + id + " has no enclave on this replica");
  std::lock_guard lock(active->mu);
  if (active->closed || !active->endpoint) {
    return Status::FailedPrecondition("request " + id + " has no open tunnel endpoint");
  }
  if (not_after_us <= active->not_after_us) return Status::Ok();
  AIRLOCK_RETURN_IF_ERROR(active->endpoint->Extend(not_after_us / 1000000));
  active->not_after_us = not_after_us;
  return Status::Ok();
}

Status EnclaveSupervisor::QueryForPeer(const std::string& id, std::string_view sql,
                                       const std::string& transport, const std::string& via,
                                       sdk::BatchConsumer& out) {
  const std::shared_ptr<ActiveEnclave> active = Find(id);
  if (!active) return Status::NotFound("request " + id + " has no enclave on this replica");
  return RunAuditedQuery(active.get(), sql, out, transport, via);
}

Result<json> EnclaveSupervisor::TablesForPeer(const std::string& id) {
  const std::shared_ptr<ActiveEnclave> active = Find(id);
  if (!active) return Status::NotFound("request " + id + " has no enclave on this replica");
  Status why;
  auto client = ClientOf(active.get(), &why);
  if (!client) return why;
  return client->Tables(std::chrono::milliseconds(active->query_timeout_ms));
}

std::vector<std::string> EnclaveSupervisor::ApprovedEndpoints(const RequestRecord& record) const {
  const KernelConfig& config = *deps_.config;
  std::vector<std::string> endpoints;
  for (const auto& name : record.request.value("datasets", std::vector<std::string>{})) {
    for (const auto& d : config.datasets) {
      if (d.name != name) continue;
      const PluginRef& connector = config.connectors.at(d.connector);
      endpoints.insert(endpoints.end(), connector.egress.begin(), connector.egress.end());
    }
  }
  return endpoints;
}

std::vector<std::string> EnclaveSupervisor::ApprovedSecretEnv(const RequestRecord& record) const {
  const KernelConfig& config = *deps_.config;
  std::set<std::string> names;
  for (const auto& name : record.request.value("datasets", std::vector<std::string>{})) {
    for (const auto& d : config.datasets) {
      if (d.name != name) continue;
      CollectEnvReferences(config.connectors.at(d.connector).config, 0, &names);
    }
  }
  return {names.begin(), names.end()};
}

json EnclaveSupervisor::SiteDatasetsOf(const RequestRecord& record) const {
  json owned = json::array();
  if (deps_.sites == nullptr) return owned;
  for (const auto& name : record.request.value("datasets", std::vector<std::string>{})) {
    if (deps_.sites->Find(name)) owned.push_back(name);
  }
  return owned;
}

std::vector<std::string> EnclaveSupervisor::ApprovedReadPaths(const RequestRecord& record) const {
  const KernelConfig& config = *deps_.config;
  std::set<std::string> paths;
  for (const auto& name : record.request.value("datasets", std::vector<std::string>{})) {
    for (const auto& d : config.datasets) {
      if (d.name != name) continue;
      const PluginRef& connector = config.connectors.at(d.connector);
      paths.insert(connector.path);
      paths.insert(connector.read_paths.begin(), connector.read_paths.end());
      std::vector<std::string> named;
      CollectConfigPaths(connector.config, "", config.config_dir, 0, &named);
      paths.insert(named.begin(), named.end());
    }
  }
  return {paths.begin(), paths.end()};
}

namespace {

// The columns `request` narrows `dataset` to, or null when it asks for all.
const json* AskedColumns(const json& request, const std::string& dataset) {
  auto columns = request.find("columns");
  if (columns == request.end() || !columns->is_object()) return nullptr;
  auto it = columns->find(dataset);
  return it != columns->end() && it->is_array() ? &*it : nullptr;
}

}  // namespace

bool AuditsQueryText(const RequestRecord& record) {
  const json& obligations = record.decision.value("obligations", json::object());
  for (const auto& [dataset, scope] : obligations.items()) {
    if (scope.is_object() && scope.value("audit_query_text", false)) return true;
  }
  return false;
}

json EnclaveSupervisor::BuildEnclaveSpec(const RequestRecord& record,
                                         const json& egress_routes) const {
  const KernelConfig& config = *deps_.config;
  json datasets = json::array();
  const json& obligations = record.decision.value("obligations", json::object());
  for (const auto& name : record.request.value("datasets", std::vector<std::string>{})) {
    const DatasetInfo* info = nullptr;
    for (const auto& d : config.datasets) {
      if (d.name == name) info = &d;
    }
    // The policy's scope, narrowed to the columns the ask named (checked at
    // create to lie within it).
    json scope = obligations.value(name, json::object());
    if (const json* asked = AskedColumns(record.request, name)) scope["columns"] = *asked;
    if (info == nullptr) {
      // A site's own dataset: its agent names the connector and the object
      // (SiteSpecs on the agent); the kernel knows neither.
      auto owned = deps_.sites != nullptr ? deps_.sites->Find(name) : std::nullopt;
      if (!owned) continue;  // validated at create
      datasets.push_back({{"name", name},
                          {"connector", {{"site", owned->agent}}},
                          {"pull", {{"dataset", name}, {"scope", std::move(scope)}}}});
      continue;
    }
    const PluginRef& connector = config.connectors.at(info->connector);
    const json connector_json = ConnectorJson(connector);
    json pull = {{"dataset", name}, {"object", info->object}, {"scope", std::move(scope)}};
    json dataset = {{"name", name}, {"connector", connector_json}, {"pull", pull}};
    if (auto key = config.dataset_keys.find(name); key != config.dataset_keys.end()) {
      dataset["key"] = key->second;
    }
    datasets.push_back(std::move(dataset));
  }
  return {{"request_id", record.id},
          {"mode", record.request.value("mode", "interactive")},
          {"queries", record.request.value("queries", json::array())},
          {"datasets", datasets},
          {"egress", egress_routes},
          {"limits",
           {{"query_timeout_ms", config.limits.query_timeout_ms},
            {"max_result_rows", config.limits.max_result_rows},
            {"max_memory_bytes", config.limits.enclave_memory_bytes},
            {"max_sql_bytes", 64 * 1024}}}};
}

void EnclaveSupervisor::Launch(const RequestRecord& record) {
  auto active = std::make_shared<ActiveEnclave>(pool_);
  active->request_id = record.id;
  active->not_after_us = record.deadline_us;
  active->mode = record.request.value("mode", "interactive");
  active->job_queries = record.request.value("queries", std::vector<std::string>{});
  active->supervisor = this;
  active->audit = deps_.audit;
  active->query_timeout_ms = deps_.config->limits.query_timeout_ms;
  active->transport = deps_.config->tunnel.name;
  active->audit_query_text = AuditsQueryText(record);
  if (record.tunnel.is_object()) {
    active->tunnel_verifier = record.tunnel.value("verifier", std::string());
  }
  if (auto p = Principal::FromJson(record.requester); p.ok()) active->requester = *p;
  active->channel.size = sizeof(airlock_type_query_channel);
  active->channel.host_data = active.get();
  active->channel.query = &ChannelQuery;
  active->channel.tables = &ChannelTables;
  {
    std::lock_guard lock(mu_);
    if (active_.count(record.id)) return;  // already launched
    active_[record.id] = active;
  }
  if (deps_.metrics) {
    deps_.metrics->Get("airlock_enclaves_active", "Enclaves currently alive", "gauge")
        .Set(static_cast<int64_t>(this->active()));
  }
  boost::asio::post(active->strand, [this, active, record] { Provision(active, record); });
}

void EnclaveSupervisor::Provision(std::shared_ptr<ActiveEnclave> active, RequestRecord record) {
  const std::string& id = active->request_id;
  // Where the enclave runs: this kernel's isolator, or an agent's host.
  const auto agent = AgentForDatasets(*deps_.config, deps_.sites,
                                      record.request.value("datasets", std::vector<std::string>{}));
  const std::string bound_agent = agent.ok() ? *agent : "";
  Status moved = deps_.transition(id, RequestState::kApproved, RequestState::kProvisioning,
                                  "provisioning enclave", [&](RequestRecord& r) {
                                    if (!bound_agent.empty()) r.enclave["agent"] = bound_agent;
                                  });
  if (!moved.ok()) {
    spdlog::warn("request {}: not provisioning: {}", id, moved.ToString());
    Teardown(id, "provisioning abandoned");
    return;
  }
  const std::vector<std::string> endpoints = ApprovedEndpoints(record);
  const json routes = EgressRoutesJson(PlanEgressRoutes(endpoints));
  active->egress_allowed = std::set<std::string>(endpoints.begin(), endpoints.end());
  json isolator_spec = {{"request_id", id},
                        {"limits",
                         {{"memory_bytes", deps_.config->limits.enclave_memory_bytes},
                          {"query_timeout_ms", deps_.config->limits.query_timeout_ms}}},
                        {"egress", routes},
                        {"max_window_seconds", deps_.config->limits.max_window_seconds},
                        {"read_paths", ApprovedReadPaths(record)},
                        {"secret_env", ApprovedSecretEnv(record)}};
  if (json owned = SiteDatasetsOf(record); !owned.empty()) {
    isolator_spec["site_datasets"] = std::move(owned);
  }
  if (!agent.ok()) {
    Fail(active, RequestState::kProvisioning, agent.status().message());
    return;
  }
  std::unique_ptr<EnclaveHandle> handle;
  std::unique_ptr<RemoteEnclave> remote;
  bool egress_forwarded = deps_.egress_forwarded;
  if (agent->empty()) {
    auto provisioned = deps_.isolator->Provision(isolator_spec);
    if (!provisioned.ok()) {
      Fail(active, RequestState::kProvisioning,
           "isolator could not provision the enclave: " + provisioned.status().message());
      return;
    }
    handle = std::move(provisioned).value();
  } else {
    if (Status open = deps_.site_open ? deps_.site_open(*agent) : Status::Ok(); !open.ok()) {
      Fail(active, RequestState::kProvisioning, open.message());
      return;
    }
    auto provisioned = deps_.remote == nullptr
                           ? Result<std::unique_ptr<RemoteEnclave>>(
                                 Status::Unavailable("agents are not enabled on this kernel"))
                           : deps_.remote->Provision(*agent, id, isolator_spec);
    if (!provisioned.ok()) {
      Fail(active, RequestState::kProvisioning,
           "agent '" + *agent +
               "' could not provision the enclave: " + provisioned.status().message());
      return;
    }
    remote = std::move(provisioned).value();
    egress_forwarded = remote->egress_forwarded();
  }
  json provisioned_event = {{"event", "enclave.provisioned"},
                            {"request_id", id},
                            {"isolator", deps_.config->isolator.name}};
  if (!agent->empty()) {
    provisioned_event["agent"] = *agent;
    provisioned_event.erase("isolator");
  }
  Audit(std::move(provisioned_event));

  // The control channel now belongs to the client.
  const int fd = handle ? handle->ReleaseControlFd() : remote->ReleaseControlFd();
  if (fd < 0) {
    if (remote) (void)remote->Terminate();
    Fail(active, RequestState::kProvisioning, "could not take the enclave's control channel");
    return;
  }
  std::weak_ptr<ActiveEnclave> weak = active;
  EnclaveEvents events;
  events.on_state = [this, weak](const json& state) {
    if (auto a = weak.lock()) {
      boost::asio::post(a->strand, [this, a, state] { OnEnclaveState(a, state); });
    }
  };
  events.on_progress = [this, weak](const json& progress) {
    if (auto a = weak.lock()) {
      boost::asio::post(a->strand, [this, a, progress] { OnEnclaveProgress(a, progress); });
    }
  };
  events.on_audit = [this, id](const json& event) {
    json record = event.is_object() ? event : json{{"detail", event}};
    record["request_id"] = id;
    if (!record.contains("event")) record["event"] = "enclave.event";
    record["source"] = "enclave";
    Audit(std::move(record));
  };
  events.on_job_result = [this, weak](size_t index) -> sdk::BatchConsumer* {
    auto a = weak.lock();
    if (!a) return nullptr;
    auto writer =
        JobResultWriter::Create(JobResultPath(deps_.config->results_dir, a->request_id, index),
                                deps_.config->limits.max_job_result_bytes);
    std::lock_guard lock(a->mu);
    if (!writer.ok()) {
      a->job_outcomes[index] = {{"outcome", "unavailable"}, {"error", writer.status().message()}};
      return nullptr;
    }
    sdk::BatchConsumer* consumer = writer->get();
    a->job_writers[index] = std::move(writer).value();
    return consumer;
  };
  events.on_job_end = [weak](size_t index, const Status& status, uint64_t rows) {
    auto a = weak.lock();
    if (!a) return;
    std::lock_guard lock(a->mu);
    Status ended = status;
    if (auto it = a->job_writers.find(index); it != a->job_writers.end()) {
      const Status finished = it->second->Finish();
      if (ended.ok() && !finished.ok()) ended = finished;
      a->job_writers.erase(it);
    }
    if (a->job_outcomes.count(index)) return;  // the file could not even be created
    json outcome = {{"rows", rows}, {"outcome", ended.ok() ? "ok" : StatusCodeName(ended.code())}};
    if (!ended.ok()) outcome["error"] = ended.message();
    a->job_outcomes[index] = std::move(outcome);
  };
  events.on_dial = [this, weak](const std::string& dial_id, const std::string& endpoint) {
    if (auto a = weak.lock()) {
      boost::asio::post(dial_pool_, [this, a, dial_id, endpoint] { OnDial(a, dial_id, endpoint); });
    }
  };
  auto client = EnclaveClient::Start(fd, std::move(events));
  if (!client.ok()) {
    ::close(fd);
    if (remote) (void)remote->Terminate();
    Fail(active, RequestState::kProvisioning,
         "enclave control channel failed: " + client.status().message());
    return;
  }
  std::shared_ptr<EnclaveClient> shared_client = std::move(client).value();
  {
    std::lock_guard lock(active->mu);
    active->handle = std::move(handle);
    active->remote = std::move(remote);
    active->client = shared_client;
    if (active->closed) {
      // Revoked while provisioning: Teardown already ran and found nothing to
      // destroy, so destroy what was just made.
      shared_client->Close();
      if (active->handle) (void)active->handle->Terminate();
      if (active->remote) (void)active->remote->Terminate();
      return;
    }
  }
  const Status sent =
      shared_client->SendSpec(BuildEnclaveSpec(record, egress_forwarded ? routes : json::array()));
  if (!sent.ok()) {
    Fail(active, RequestState::kProvisioning,
         "could not send the enclave its spec: " + sent.message());
  }
}

void EnclaveSupervisor::OnDial(const std::shared_ptr<ActiveEnclave>& active,
                               const std::string& dial_id, const std::string& endpoint) {
  std::shared_ptr<EnclaveClient> client;
  Status refused;
  {
    std::lock_guard lock(active->mu);
    client = active->client;
    if (active->closed) {
      refused = Status::Unavailable("the request is closed");
    } else if (active->sealed) {
      refused = Status::PermissionDenied("egress ends when the enclave is sealed");
    } else if (!active->egress_allowed.count(endpoint)) {
      refused = Status::PermissionDenied("endpoint is not approved for this request");
    }
  }
  if (client == nullptr) return;
  Result<enclave::UniqueFd> connected = refused;
  if (refused.ok()) connected = DialTcp(endpoint, std::chrono::seconds(10));
  json event = {
      {"event", "enclave.egress"},
      {"request_id", active->request_id},
      {"endpoint", endpoint.substr(0, 300)},
      {"outcome", connected.ok() ? "connected" : StatusCodeName(connected.status().code())}};
  if (!connected.ok()) event["reason"] = connected.status().message();
  Audit(std::move(event));
  const Status replied = client->ReplyDial(dial_id, std::move(connected));
  if (!replied.ok())
    spdlog::debug("request {}: dial reply failed: {}", active->request_id, replied.ToString());
}

void EnclaveSupervisor::OnEnclaveProgress(const std::shared_ptr<ActiveEnclave>& active,
                                          const json& progress) {
  if (!progress.is_object()) return;
  const std::string dataset = progress.value("dataset", "");
  if (dataset.empty()) return;
  std::string previous;
  {
    std::lock_guard lock(active->mu);
    previous = active->progress->value(dataset, json::object()).value("state", "");
    auto next = std::make_shared<json>(*active->progress);
    (*next)[dataset] = progress;
    active->progress = std::move(next);
  }
  const std::string state = progress.value("state", "");
  if (previous.empty() && (state == "done" || state == "failed")) {
    // A small dataset can finish before its first progress report: its
    // start is still a decision point worth a record.
    Audit({{"event", "enclave.pull_started"},
           {"request_id", active->request_id},
           {"dataset", dataset}});
  }
  if (state != previous && (state == "pulling" || state == "done" || state == "failed")) {
    json event = {{"event", "enclave.pull_" + std::string(state == "pulling" ? "started" : state)},
                  {"request_id", active->request_id},
                  {"dataset", dataset},
                  {"rows", progress.value("rows", 0)},
                  {"bytes", progress.value("bytes", 0)},
                  {"elapsed_ms", progress.value("elapsed_ms", 0)}};
    if (progress.contains("error")) event["error"] = progress["error"];
    Audit(std::move(event));
  }
}

void EnclaveSupervisor::OnEnclaveState(const std::shared_ptr<ActiveEnclave>& active,
                                       const json& state) {
  const std::string name = state.is_object() ? state.value("state", "") : "";
  const std::string& id = active->request_id;
  if (name == "sealed" || name == "memory") RecordMemory(*active, state);
  if (name == "ingesting") {
    const Status s = deps_.transition(id, RequestState::kProvisioning, RequestState::kIngesting,
                                      "enclave is pulling the approved datasets", nullptr);
    if (!s.ok()) spdlog::warn("request {}: {}", id, s.ToString());
  } else if (name == "sealed") {
    if (deps_.metrics && state.contains("seal_us") && state["seal_us"].is_number_unsigned()) {
      deps_.metrics
          ->GetHistogram("airlock_enclave_seal_seconds",
                         "Time an enclave took to seal once its pulls ended", "",
                         Metrics::LatencyBuckets())
          .Observe(static_cast<double>(state["seal_us"].get<uint64_t>()) / 1e6);
    }
    Audit({{"event", "enclave.credentials_cleared"}, {"request_id", id}});
    Audit({{"event", "enclave.sealed"},
           {"request_id", id},
           {"tables", state.value("tables", json::array())}});
    {
      std::lock_guard lock(active->mu);
      active->sealed = true;
    }
    if (active->mode == "job") {
      const Status s = deps_.transition(
          id, RequestState::kIngesting, RequestState::kReady, "enclave sealed; job running",
          [&](RequestRecord& r) {
            std::lock_guard lock(active->mu);
            r.enclave["progress"] = *active->progress;
            r.enclave["job"] = {{"state", "running"}, {"queries", active->job_queries.size()}};
          });
      if (!s.ok()) spdlog::warn("request {}: {}", id, s.ToString());
      return;
    }
    OpenTunnel(active);
  } else if (name == "job_finished") {
    FinishJob(active);
  } else if (name == "failed") {
    const std::string reason = state.value("reason", "enclave failed");
    bool was_sealed;
    {
      std::lock_guard lock(active->mu);
      was_sealed = active->sealed;
    }
    Fail(active, was_sealed ? RequestState::kReady : RequestState::kIngesting, reason);
  }
}

void EnclaveSupervisor::FinishJob(const std::shared_ptr<ActiveEnclave>& active) {
  const std::string& id = active->request_id;
  const int64_t expires_at_us =
      deps_.now_us() + deps_.config->limits.job_results_retention_seconds * 1000000;
  json results = json::array();
  {
    std::lock_guard lock(active->mu);
    for (size_t i = 0; i < active->job_queries.size(); ++i) {
      json entry = {{"index", i}, {"sql_sha256", Sha256Hex(active->job_queries[i])}};
      auto it = active->job_outcomes.find(i);
      if (it != active->job_outcomes.end()) {
        entry.update(it->second);
      } else {
        entry["outcome"] = "unknown";
        entry["rows"] = 0;
      }
      results.push_back(std::move(entry));
    }
  }
  Audit({{"event", "job.finished"}, {"request_id", id}, {"results", results}});
  const Status s = deps_.transition(
      id, RequestState::kReady, RequestState::kClosed, "job finished; results kept for download",
      [&](RequestRecord& r) {
        r.enclave["job"] = {
            {"state", "finished"}, {"results", results}, {"expires_at_us", expires_at_us}};
        r.deadline_us = expires_at_us;
      });
  if (!s.ok()) spdlog::warn("request {}: could not record the finished job: {}", id, s.ToString());
  Teardown(id, "job finished");
}

void EnclaveSupervisor::OpenTunnel(const std::shared_ptr<ActiveEnclave>& active) {
  const std::string& id = active->request_id;
  json spec = {{"request_id", id},
               {"principal", active->requester.ToJson()},
               {"not_after", active->not_after_us / 1000000}};
  // The requester keeps the credential it collected before a takeover.
  if (!active->tunnel_verifier.empty()) spec["verifier"] = active->tunnel_verifier;
  auto opened = deps_.tunnel->Open(spec, &active->channel);
  if (!opened.ok()) {
    Fail(active, RequestState::kIngesting, "tunnel could not open: " + opened.status().message());
    return;
  }
  auto [endpoint, grant] = std::move(opened).value();
  // The verifier goes to the shared state (for a survivor's tunnel), not to
  // the requester. A tunnel that issued a new credential all the same (one
  // that does not take verifiers) has one to collect.
  std::string verifier;
  if (auto it = grant.find("verifier"); it != grant.end()) {
    if (it->is_string()) verifier = it->get<std::string>();
    grant.erase(it);
  }
  const bool kept_credential = !grant.contains("credential");
  json tunnel_info = {{"transport", active->transport},
                      {"url", grant.value("url", "")},
                      {"expires_at", active->not_after_us / 1000000},
                      {"credential_collected", kept_credential}};
  if (!verifier.empty()) tunnel_info["verifier"] = verifier;
  {
    std::lock_guard lock(active->mu);
    if (active->closed) return;  // endpoint handle closes the tunnel on scope exit
    active->endpoint = std::move(endpoint);
    if (kept_credential) {
      active->grant_collected = true;
    } else {
      active->grant = std::move(grant);
    }
  }
  const Status s = deps_.transition(id, RequestState::kIngesting, RequestState::kReady,
                                    "enclave sealed; tunnel open", [&](RequestRecord& r) {
                                      r.tunnel = tunnel_info;
                                      std::lock_guard lock(active->mu);
                                      r.enclave["progress"] = *active->progress;
                                    });
  if (!s.ok()) {
    spdlog::warn("request {}: could not become ready: {}", id, s.ToString());
    Teardown(id, "request left ingesting before the tunnel opened");
    return;
  }
  Audit({{"event", "tunnel.opened"},
         {"request_id", id},
         {"transport", active->transport},
         {"url", tunnel_info["url"]},
         {"principal",
          {{"subject", active->requester.subject},
           {"kind", PrincipalKindName(active->requester.kind)}}}});
}

void EnclaveSupervisor::Fail(const std::shared_ptr<ActiveEnclave>& active, RequestState from,
                             const std::string& reason) {
  const std::string& id = active->request_id;
  Status s = deps_.transition(id, from, RequestState::kFailed, reason, [&](RequestRecord& r) {
    std::lock_guard lock(active->mu);
    r.enclave["progress"] = *active->progress;
  });
  if (!s.ok() && from == RequestState::kIngesting) {
    // The enclave can fail before it reported ingesting.
    s = deps_.transition(id, RequestState::kProvisioning, RequestState::kFailed, reason, nullptr);
  }
  if (!s.ok()) spdlog::warn("request {}: could not record failure: {}", id, s.ToString());
  Teardown(id, reason, AIRLOCK_CLOSE_FAILED);
}

void EnclaveSupervisor::Teardown(const std::string& id, const std::string& reason,
                                 airlock_type_close_reason cause) {
  std::shared_ptr<ActiveEnclave> active;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(id);
    if (it == active_.end()) return;
    active = it->second;
    active_.erase(it);
  }
  std::unique_ptr<TunnelEndpointHandle> endpoint;
  std::shared_ptr<EnclaveClient> client;
  std::unique_ptr<EnclaveHandle> handle;
  std::unique_ptr<RemoteEnclave> remote;
  {
    std::lock_guard lock(active->mu);
    active->closed = true;
    endpoint = std::move(active->endpoint);
    client = std::move(active->client);
    handle = std::move(active->handle);
    remote = std::move(active->remote);
    active->grant.reset();
  }
  // Order matters: revoke the tunnel (drops connections), then stop queries,
  // then kill the enclave and wipe its memory.
  const bool had_tunnel = endpoint != nullptr;
  if (had_tunnel) {
    endpoint->Close(cause);
    endpoint.reset();
    Audit({{"event", "tunnel.closed"}, {"request_id", id}, {"reason", reason}});
  }
  if (client) client->Close();
  if (handle) {
    const Status s = handle->Terminate();
    if (!s.ok()) spdlog::error("request {}: enclave terminate failed: {}", id, s.ToString());
    Audit({{"event", "enclave.destroyed"}, {"request_id", id}, {"reason", reason}});
  }
  if (remote) {
    const Status s = remote->Terminate();
    if (!s.ok()) spdlog::warn("request {}: remote enclave terminate: {}", id, s.ToString());
    Audit({{"event", "enclave.destroyed"}, {"request_id", id}, {"reason", reason}});
  }
  if (deps_.metrics) {
    deps_.metrics->Get("airlock_enclaves_active", "Enclaves currently alive", "gauge")
        .Set(static_cast<int64_t>(this->active()));
  }
}

void EnclaveSupervisor::TeardownAll(const std::string& reason, airlock_type_close_reason cause) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, active] : active_) ids.push_back(id);
  }
  for (const auto& id : ids) Teardown(id, reason, cause);
}

}  // namespace airlock
