// EnclaveSupervisor::DescribeDatasets: the connectors describe the datasets
// they serve (columns, description) in an enclave, never in the kernel:
// their code, their secrets and their sources stay where a pull would have
// them. The catalog shows what they said (kernel/core/catalog_document.h).
#include <unistd.h>

#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "kernel/common/crypto.h"
#include "kernel/core/egress_dialer.h"
#include "kernel/core/enclave_supervisor.h"
#include "kernel/enclave/enclave_client.h"
#include "kernel/plugin_host/plugin_instances.h"

namespace airlock {

using nlohmann::json;

namespace {

// What the describe enclave's reader thread hands over: its one answer, and
// the client once started (for dial replies).
struct DescribeSession {
  std::mutex mu;
  std::promise<json> answer;
  bool answered = false;                           // guarded by mu
  std::shared_ptr<enclave::EnclaveClient> client;  // guarded by mu

  void Answer(json state) {
    std::lock_guard lock(mu);
    if (answered) return;
    answered = true;
    answer.set_value(std::move(state));
  }
};

}  // namespace

Result<json> EnclaveSupervisor::DescribeDatasets(std::chrono::milliseconds timeout,
                                                 const std::atomic<bool>* stop) {
  const KernelConfig& config = *deps_.config;
  RequestRecord record;
  record.id = "catalog-" + RandomHex(8);
  json local = json::array();
  for (const auto& d : config.datasets) {
    const PluginRef& connector = config.connectors.at(d.connector);
    if (connector.agent.empty()) local.push_back(d.name);
  }
  if (local.empty()) return json{{"datasets", json::object()}, {"errors", json::object()}};
  record.request = {{"datasets", local}, {"mode", "describe"}};

  const std::vector<std::string> endpoints = ApprovedEndpoints(record);
  const std::set<std::string> allowed(endpoints.begin(), endpoints.end());
  const json routes = EgressRoutesJson(PlanEgressRoutes(endpoints));
  const json isolator_spec = {{"request_id", record.id},
                              {"limits",
                               {{"memory_bytes", config.limits.enclave_memory_bytes},
                                {"query_timeout_ms", config.limits.query_timeout_ms}}},
                              {"egress", routes},
                              {"read_paths", ApprovedReadPaths(record)},
                              {"secret_env", ApprovedSecretEnv(record)}};
  auto provisioned = deps_.isolator->Provision(isolator_spec);
  if (!provisioned.ok()) {
    return provisioned.status().WithContext("provisioning the describe enclave");
  }
  std::unique_ptr<plugin_host::EnclaveHandle> handle = std::move(provisioned).value();
  const int fd = handle->ReleaseControlFd();
  if (fd < 0) {
    (void)handle->Terminate();
    return Status::Internal("could not take the describe enclave's control channel");
  }

  auto session = std::make_shared<DescribeSession>();
  std::future<json> answered = session->answer.get_future();
  enclave::EnclaveEvents events;
  events.on_state = [session](const json& state) {
    const std::string name = state.is_object() ? state.value("state", "") : "";
    if (name == "described" || name == "failed") session->Answer(state);
  };
  events.on_dial = [this, session, allowed](const std::string& dial_id,
                                            const std::string& endpoint) {
    boost::asio::post(dial_pool_, [session, allowed, dial_id, endpoint] {
      std::shared_ptr<enclave::EnclaveClient> client;
      {
        std::lock_guard lock(session->mu);
        client = session->client;
      }
      if (client == nullptr) return;
      Result<enclave::UniqueFd> connected =
          allowed.count(endpoint) ? DialTcp(endpoint, std::chrono::seconds(10))
                                  : Result<enclave::UniqueFd>(Status::PermissionDenied(
                                        "endpoint is not a source of this kernel's datasets"));
      if (!connected.ok()) {
        spdlog::warn("describing the catalog: dial {} refused: {}", endpoint,
                     connected.status().message());
      }
      (void)client->ReplyDial(dial_id, std::move(connected));
    });
  };
  events.on_audit = [this, id = record.id](const json& event) {
    json entry = event.is_object() ? event : json{{"detail", event}};
    if (!entry.contains("event")) entry["event"] = "enclave.event";
    entry["source"] = "enclave";
    entry["describe"] = id;
    Audit(std::move(entry));
  };
  auto started = enclave::EnclaveClient::Start(fd, std::move(events));
  if (!started.ok()) {
    ::close(fd);
    (void)handle->Terminate();
    return started.status().WithContext("the describe enclave's control channel");
  }
  std::shared_ptr<enclave::EnclaveClient> client = std::move(started).value();
  {
    std::lock_guard lock(session->mu);
    session->client = client;
  }
  Status outcome =
      client->SendSpec(BuildEnclaveSpec(record, deps_.egress_forwarded ? routes : json::array()));
  json state;
  if (outcome.ok()) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (answered.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (stop != nullptr && stop->load()) {
        outcome = Status::Cancelled("the kernel is stopping");
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        outcome =
            Status::DeadlineExceeded("the connectors did not describe their datasets within " +
                                     std::to_string(timeout.count()) + " ms");
        break;
      }
    }
    if (outcome.ok()) state = answered.get();
  }
  {
    std::lock_guard lock(session->mu);
    session->client.reset();
  }
  client->Close();
  if (Status ended = handle->Terminate(); !ended.ok()) {
    spdlog::warn("describing the catalog: terminating its enclave: {}", ended.message());
  }
  AIRLOCK_RETURN_IF_ERROR(outcome);
  if (state.value("state", "") != "described") {
    return Status::Unavailable("the describe enclave failed: " +
                               state.value("reason", std::string("no reason given")));
  }
  return json{{"datasets", state.value("datasets", json::object())},
              {"errors", state.value("errors", json::object())}};
}

}  // namespace airlock
