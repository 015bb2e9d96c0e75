// Owns the live enclaves of approved requests: provisions them through the
// isolator, feeds them their spec over the control channel, follows their
// ingestion, opens the tunnel once sealed, and tears everything down.
//
// The supervisor never decides lifecycle states itself: it asks its owner to
// move a request through the `Transition` callback, which persists and audits.
// Thread-safety: all public methods may be called concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/core/config.h"
#include "kernel/core/enclave_memory.h"
#include "kernel/core/remote_enclaves.h"
#include "kernel/core/site_catalog.h"
#include "kernel/lifecycle/request_record.h"

namespace airlock {

class AuditLog;
namespace plugin_host {
class IsolatorPlugin;
class TunnelPlugin;
}  // namespace plugin_host
class Metrics;
struct ActiveEnclave;

// Whether the request's obligations keep the text of its queries in the
// audit (the policy's audit_query_text, on any of its datasets).
bool AuditsQueryText(const RequestRecord& record);

class EnclaveSupervisor {
 public:
  // Moves request `id` from `from` to `to` if it is still in `from`; `mutate`
  // edits the record before it is saved. Returns the persisted outcome.
  using Transition = std::function<Status(const std::string& id, RequestState from, RequestState to,
                                          const std::string& reason,
                                          const std::function<void(RequestRecord&)>& mutate)>;

  struct Dependencies {
    const KernelConfig* config = nullptr;
    AuditLog* audit = nullptr;
    const plugin_host::IsolatorPlugin* isolator = nullptr;
    const plugin_host::TunnelPlugin* tunnel = nullptr;
    Metrics* metrics = nullptr;
    std::function<int64_t()> now_us;
    Transition transition;
    // True when the isolator gives enclaves a network of their own and maps
    // approved endpoints into it (DescribeIsolation "egress": "forwarded"):
    // the enclave then runs a forwarder and the kernel dials for it.
    bool egress_forwarded = false;
    // Provisions enclaves of requests whose datasets are bound to an agent
    // (AgentForDatasets); null when no agents are configured.
    RemoteEnclaveHost* remote = nullptr;
    // The datasets sites own; their enclaves run on the owning agent's
    // host, which fills in their connectors. Null: none.
    const SiteCatalog* sites = nullptr;
    // Ok while agent `agent`'s site may run enclaves; otherwise why not (an
    // admin suspended it), and provisioning there fails with that. Empty:
    // always may.
    std::function<Status(const std::string& agent)> site_open;
    // False while this kernel may not answer queries from its enclaves (a
    // replica that cannot show it holds its lease); empty: always may.
    std::function<bool()> may_serve;
  };

  explicit EnclaveSupervisor(Dependencies deps);
  ~EnclaveSupervisor();

  // Starts provisioning `record` (state approved) in the background.
  void Launch(const RequestRecord& record);
  // Destroys the request's tunnel and enclave now (idempotent). Returns once
  // open tunnel connections are dropped and the enclave is terminated.
  // `cause` is what the tunnel tells its users (window ended, revoked, ...);
  // `reason` is the audit text.
  void Teardown(const std::string& id, const std::string& reason,
                airlock_type_close_reason cause = AIRLOCK_CLOSE_REVOKED);
  // Tears down every live enclave (kernel shutdown).
  void TeardownAll(const std::string& reason, airlock_type_close_reason cause);
  // Tears everything down and waits for background work to finish.
  void Stop();

  // Live per-dataset ingestion progress of a request (an empty object if
  // none). Each report replaces the document, so an unchanged pointer means
  // unchanged progress (what the request view cache keys on).
  std::shared_ptr<const nlohmann::json> Progress(const std::string& id) const;
  // Moves the window end of request `id`'s open tunnel endpoint to the later
  // `not_after_us`. NotFound when its enclave is not here; NotImplemented
  // when the tunnel plugin cannot extend windows.
  Status ExtendWindow(const std::string& id, int64_t not_after_us);
  // The tunnel grant (with its credential), once; NotFound / FailedPrecondition after.
  Result<nlohmann::json> TakeGrant(const std::string& id);
  size_t active() const;
  EnclaveMemory memory() const;
  bool MayServe() const { return !deps_.may_serve || deps_.may_serve(); }
  // Ids of the requests whose enclave lives here.
  std::vector<std::string> ActiveIds() const;

  // Has this kernel's own datasets (not an agent's) described by their
  // connectors, in an enclave of their own provisioned as a pull of all of
  // them would be (their egress, files and secrets), in mode describe: no
  // row is pulled. Waits at most `timeout`, or until `*stop` turns true.
  // {"datasets": {name: {"columns": [...], "description"?, "tags"?}},
  //  "errors": {name: reason}} (kernel/core/enclave_describe.cc).
  Result<nlohmann::json> DescribeDatasets(std::chrono::milliseconds timeout,
                                          const std::atomic<bool>* stop);

  // A tunnel query of request `id` that reached another replica (`via`),
  // run here and audited like one of this kernel's own tunnel queries.
  // NotFound when the request has no enclave here.
  Status QueryForPeer(const std::string& id, std::string_view sql, const std::string& transport,
                      const std::string& via, sdk::BatchConsumer& out);
  // The enclave's tables ({"tables":[...]}), for another replica's tunnel.
  Result<nlohmann::json> TablesForPeer(const std::string& id);

 private:
  std::shared_ptr<ActiveEnclave> Find(const std::string& id) const;
  void Provision(std::shared_ptr<ActiveEnclave> active, RequestRecord record);
  void OnEnclaveState(const std::shared_ptr<ActiveEnclave>& active, const nlohmann::json& state);
  void OnEnclaveProgress(const std::shared_ptr<ActiveEnclave>& active,
                         const nlohmann::json& progress);
  void OpenTunnel(const std::shared_ptr<ActiveEnclave>& active);
  // Job mode: records every result's outcome, closes the request (results
  // stay downloadable until the retention deadline) and tears down.
  void FinishJob(const std::shared_ptr<ActiveEnclave>& active);
  void Fail(const std::shared_ptr<ActiveEnclave>& active, RequestState from,
            const std::string& reason);
  void Audit(nlohmann::json event);
  void OnDial(const std::shared_ptr<ActiveEnclave>& active, const std::string& dial_id,
              const std::string& endpoint);
  std::vector<std::string> ApprovedEndpoints(const RequestRecord& record) const;
  // The datasets of `record` its agent's site owns (their connectors are
  // filled in there): the isolator spec's "site_datasets".
  nlohmann::json SiteDatasetsOf(const RequestRecord& record) const;
  // What the approved datasets' connectors read from the host's file system:
  // the plugin files, their `read_paths`, and paths named in their
  // configuration (`root`, keys ending in `_file`/`_dir`/`_path`, `file:`
  // secret references). The isolator makes only these visible to the enclave.
  std::vector<std::string> ApprovedReadPaths(const RequestRecord& record) const;
  // The environment variables the `env:NAME` secret references of the
  // approved datasets' connectors name: the only variables the isolator lets
  // the enclave inherit (the kernel's environment holds every source's).
  std::vector<std::string> ApprovedSecretEnv(const RequestRecord& record) const;
  nlohmann::json BuildEnclaveSpec(const RequestRecord& record,
                                  const nlohmann::json& egress_routes) const;

  Dependencies deps_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<ActiveEnclave>> active_;  // GUARDED_BY(mu_)
  boost::asio::thread_pool pool_;
  boost::asio::thread_pool dial_pool_;  // outbound connects may wait seconds
};

}  // namespace airlock
