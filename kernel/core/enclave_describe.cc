// EnclaveSupervisor::DescribeDatasets: the connectors of this kernel's own
// datasets describe them in an enclave (describe_run.h). The catalog shows
// what they said (kernel/core/catalog_document.h).
#include <set>

#include "kernel/common/crypto.h"
#include "kernel/core/describe_run.h"
#include "kernel/core/egress_dialer.h"
#include "kernel/core/enclave_supervisor.h"

namespace airlock {

using nlohmann::json;

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
  DescribeRun run;
  run.isolator = deps_.isolator;
  run.isolator_spec = isolator_spec;
  run.enclave_spec = BuildEnclaveSpec(record, deps_.egress_forwarded ? routes : json::array());
  run.allowed_endpoints = allowed;
  run.dial_pool = &dial_pool_;
  run.audit = [this, id = record.id](const json& event) {
    json entry = event.is_object() ? event : json{{"detail", event}};
    if (!entry.contains("event")) entry["event"] = "enclave.event";
    entry["source"] = "enclave";
    entry["describe"] = id;
    Audit(std::move(entry));
  };
  run.timeout = timeout;
  run.stop = stop;
  return RunDescribeEnclave(run);
}

}  // namespace airlock
