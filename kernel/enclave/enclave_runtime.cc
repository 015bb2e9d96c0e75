#include "kernel/enclave/enclave_runtime.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "kernel/common/crypto.h"
#include "kernel/common/process_memory.h"
#include "kernel/enclave/channel.h"
#include "kernel/enclave/egress_forwarder.h"
#include "kernel/enclave/enclave_spec.h"
#include "kernel/enclave/ingestion.h"
#include "kernel/enclave/query_engine.h"
#include "kernel/enclave/query_gate.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"

namespace airlock::enclave {
namespace {

// Heap SQLite may use beyond the data itself (page caches, statements, sorts)
// when the process-wide bound applies.
constexpr int64_t kHeapSlackBytes = 64 * 1024 * 1024;

enum class Phase { kWaiting, kIngesting, kSealed, kFailed };

// The loader of every enclave that shares its process with others.
plugin_host::PluginLoader& SharedLoader() {
  static plugin_host::PluginLoader loader(EnclaveHostServices());
  return loader;
}

nlohmann::json TablesJson(const std::vector<TableInfo>& tables) {
  nlohmann::json out = nlohmann::json::array();
  for (const TableInfo& table : tables) {
    nlohmann::json columns = nlohmann::json::array();
    for (const arrow::Field& field : table.fields) {
      nlohmann::json column = {{"name", field.name}, {"type", arrow::TypeName(field.type)}};
      // timestamp[us] with a zone is an instant (timestamptz), without one a wall clock.
      if (!field.timezone.empty()) column["timezone"] = field.timezone;
      columns.push_back(std::move(column));
    }
    out.push_back({{"name", table.name}, {"rows", table.rows}, {"columns", columns}});
  }
  return out;
}

nlohmann::json ErrorFields(const Status& status) {
  return {{"error", status.message()}, {"code", StatusCodeName(status.code())}};
}

class EnclaveSession {
 public:
  EnclaveSession(FrameChannel& channel, EnclaveEnvironment env)
      : channel_(channel), env_(std::move(env)), host_(env_.log, channel_) {
    // In a process of its own the loader is made once the spec is known.
    if (!env_.owns_process) loader_ = &SharedLoader();
  }

  ~EnclaveSession() { Teardown(); }

  Status Serve() {
    auto first = channel_.Receive(env_.spec_timeout);
    if (!first.ok()) return first.status().WithContext("waiting for the enclave spec");
    if (first->type != FrameType::kSpec) {
      const Status wrong = Status::InvalidArgument("the first frame must be the enclave spec");
      SendState("failed", {{"reason", wrong.message()}, {"code", "invalid_argument"}});
      return wrong;
    }
    Result<EnclaveSpec> spec = ParseSpec(first->payload);
    // Connector configurations should hold secret references only; in case
    // one holds more, keep no copy of the raw document.
    SecureWipe(first->payload.data(), first->payload.size());
    first->payload.clear();
    if (!spec.ok()) {
      SetFailed(spec.status());
    } else {
      spec_ = std::move(spec).value();
      gate_ = std::make_unique<QueryGate>(spec_.datasets);
      nlohmann::json names = nlohmann::json::array();
      std::vector<std::string> dataset_names;
      for (const DatasetSpec& ds : spec_.datasets) {
        names.push_back(ds.name);
        dataset_names.push_back(ds.name);
      }
      IngestOptions options;
      options.max_memory_bytes = spec_.limits.max_memory_bytes;
      if (spec_.mode == EnclaveMode::kDescribe) {
        if (Status egress = StartEgress(); !egress.ok()) {
          SetFailed(egress.WithContext("starting egress"));
        } else {
          worker_ = std::thread([this] { DescribeAndReport(); });
        }
        return ServeFrames();
      }
      options.max_lanes = env_.ingest_lanes;
      options.progress_interval = env_.progress_interval;
      for (const DatasetSpec& ds : spec_.datasets) options.declared_keys.push_back(ds.key);
      ingestion_ = std::make_unique<Ingestion>(std::move(dataset_names),
                                               "airlock-enclave-" + RandomHex(8), options);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        phase_ = Phase::kIngesting;
      }
      Status egress = StartEgress();
      if (!egress.ok()) {
        SetFailed(egress.WithContext("starting egress"));
      } else {
        SendState("ingesting", {{"request_id", spec_.request_id}, {"datasets", names}});
        worker_ = std::thread([this] { IngestAndSeal(); });
      }
    }

    return ServeFrames();
  }

 private:
  // Frames from the kernel until it shuts the enclave down or goes away.
  Status ServeFrames() {
    for (;;) {
      auto frame = channel_.Receive(env_.memory_report_interval);
      if (!frame.ok() && frame.status().code() == StatusCode::kDeadlineExceeded) {
        ReportMemory();  // idle: a half-read frame shut the channel and ends the loop next
        continue;
      }
      if (!frame.ok()) {
        if (frame.status().code() != StatusCode::kUnavailable) {
          host_.Log(AIRLOCK_LOG_WARN, "enclave", frame.status().ToString());
        }
        break;
      }
      if (frame->type == FrameType::kShutdown) break;
      HandleFrame(*frame);
    }
    Teardown();
    return Status::Ok();
  }

  static Result<EnclaveSpec> ParseSpec(std::string_view payload) {
    AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJsonObject(payload, "enclave spec"));
    return EnclaveSpec::FromJson(doc);
  }

  Status StartEgress() {
    if (spec_.egress.empty()) return Status::Ok();
    auto started = EgressForwarder::Start(
        spec_.egress, [this](const std::string& endpoint) { return Dial(endpoint); });
    if (!started.ok()) return started.status();
    egress_ = std::move(started).value();
    return Status::Ok();
  }

  void StopEgress() {
    if (egress_ != nullptr) egress_->Stop();
  }

  // Asks the kernel for a socket connected to `endpoint` and waits for it.
  Result<UniqueFd> Dial(const std::string& endpoint) {
    const std::string id = "dial-" + std::to_string(next_dial_.fetch_add(1));
    auto waiter = std::make_shared<DialWaiter>();
    {
      std::lock_guard<std::mutex> lock(dial_mutex_);
      dials_[id] = waiter;
    }
    Status sent = channel_.SendJson(FrameType::kDial, {{"id", id}, {"endpoint", endpoint}});
    std::unique_lock<std::mutex> lock(dial_mutex_);
    if (sent.ok()) {
      dial_cv_.wait_for(lock, kDialTimeout, [&] { return waiter->answered || dials_closed_; });
    }
    dials_.erase(id);
    if (!sent.ok()) return sent;
    if (!waiter->answered) return Status::DeadlineExceeded("the kernel did not answer the dial");
    return std::move(waiter->result);
  }

  void AnswerDial(Frame& frame) {
    auto doc = ParseJsonObject(frame.payload, "dial result");
    std::string id;
    if (!doc.ok() || !ValidId(*doc, &id)) return;
    std::lock_guard<std::mutex> lock(dial_mutex_);
    auto it = dials_.find(id);
    if (it == dials_.end()) return;  // late: the waiter gave up; the socket closes here
    DialWaiter& waiter = *it->second;
    if (frame.fd.valid()) {
      waiter.result = std::move(frame.fd);
    } else {
      waiter.result =
          Status(StatusCodeFromName(doc->value("code", "")), doc->value("error", "dial refused"));
    }
    waiter.answered = true;
    dial_cv_.notify_all();
  }

  void CloseDials() {
    std::lock_guard<std::mutex> lock(dial_mutex_);
    dials_closed_ = true;
    dial_cv_.notify_all();
  }

  // The memory this enclave holds: its data (the in-memory databases) and,
  // in a process of its own, the process's resident memory.
  nlohmann::json MemoryUse() const {
    nlohmann::json use = {{"data_bytes", ingestion_ != nullptr ? ingestion_->data_bytes() : 0}};
    if (env_.owns_process) {
      if (const int64_t resident = ResidentMemoryBytes(); resident > 0) {
        use["resident_bytes"] = resident;
      }
    }
    return use;
  }

  void ReportMemory() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (phase_ != Phase::kSealed) return;
    }
    SendState("memory", {{"memory", MemoryUse()}});
  }

  void SendState(const char* state, nlohmann::json fields) {
    fields["state"] = state;
    (void)channel_.SendJson(FrameType::kState, fields);
  }

  void SetFailed(const Status& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      phase_ = Phase::kFailed;
      failure_ = why;
    }
    SendState("failed", {{"reason", why.message()}, {"code", StatusCodeName(why.code())}});
  }

  // Why a query cannot run now (the enclave is not sealed).
  Status NotServing() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (phase_ == Phase::kFailed) {
      return Status::FailedPrecondition("the enclave failed: " + failure_.message());
    }
    return Status::FailedPrecondition("the enclave is not sealed yet");
  }

  QueryEngine* engine() {
    std::lock_guard<std::mutex> lock(mutex_);
    return phase_ == Phase::kSealed ? engine_.get() : nullptr;
  }

  void HandleFrame(Frame& frame) {
    switch (frame.type) {
      case FrameType::kDialResult:
        AnswerDial(frame);
        return;
      case FrameType::kQuery: {
        auto doc = ParseJsonObject(frame.payload, "query");
        std::string id, sql;
        if (!doc.ok() || !ValidId(*doc, &id)) {
          host_.Log(AIRLOCK_LOG_WARN, "enclave", "ignored a query frame without a valid id");
          return;
        }
        Status read = json_read::String(*doc, "sql", &sql, true, "query");
        QueryEngine* queries = engine();
        if (read.ok() && queries != nullptr) {
          // The clean room is kept here, where the data is: whatever the
          // transport, a query runs only as the gate admits it.
          Result<std::string> admitted = gate_->Admit(sql);
          if (admitted.ok()) {
            queries->Submit(std::move(id), std::move(admitted).value());
            return;
          }
          read = admitted.status();
        }
        const Status refused = read.ok() ? NotServing() : read;
        nlohmann::json end = {{"id", id}, {"rows", 0}};
        end.update(ErrorFields(refused));
        (void)channel_.SendJson(FrameType::kResultEnd, end);
        return;
      }
      case FrameType::kCancel: {
        auto doc = ParseJsonObject(frame.payload, "cancel");
        std::string id;
        if (doc.ok() && ValidId(*doc, &id)) {
          if (QueryEngine* queries = engine(); queries != nullptr) queries->Cancel(id);
        }
        return;
      }
      case FrameType::kCredit: {
        auto doc = ParseJsonObject(frame.payload, "credit");
        std::string id;
        if (!doc.ok() || !ValidId(*doc, &id)) return;
        auto bytes = doc->find("bytes");
        if (bytes == doc->end() || !bytes->is_number_unsigned()) return;
        if (QueryEngine* queries = engine(); queries != nullptr) {
          queries->Credit(id, bytes->get<uint64_t>());
        }
        return;
      }
      case FrameType::kTables: {
        auto doc = ParseJsonObject(frame.payload, "tables request");
        std::string id;
        if (!doc.ok() || !ValidId(*doc, &id)) return;
        nlohmann::json reply = {{"id", id}};
        if (engine() != nullptr) {
          reply["tables"] = tables_;
        } else {
          reply.update(ErrorFields(NotServing()));
        }
        (void)channel_.SendJson(FrameType::kTablesResult, reply);
        return;
      }
      default:
        host_.Log(AIRLOCK_LOG_WARN, "enclave",
                  std::string("ignored an unexpected ") + FrameTypeName(frame.type) + " frame");
        return;
    }
  }

  static bool ValidId(const nlohmann::json& doc, std::string* id) {
    auto it = doc.find("id");
    if (it == doc.end() || !it->is_string()) return false;
    *id = it->get<std::string>();
    return !id->empty() && id->size() <= kMaxQueryIdBytes;
  }

  // Loads connectors as the pulls will (one loader per process of its own).
  void PrepareLoader() {
    if (!env_.owns_process) return;
    // Nothing in this process reports a connector's hash (the kernel hashed
    // the files at start-up), so an unpinned connector is not read in full
    // here: that read was the largest CPU cost of starting an enclave
    // (docs/benchmarks.md). With any pin in the spec every load is hashed,
    // so two datasets on one file never meet a library loaded unhashed.
    const bool any_pin =
        std::any_of(spec_.datasets.begin(), spec_.datasets.end(),
                    [](const DatasetSpec& ds) { return !ds.connector.sha256.empty(); });
    owned_loader_ = std::make_unique<plugin_host::PluginLoader>(
        EnclaveHostServices(), any_pin ? plugin_host::PluginLoader::UnpinnedHashing::kHash
                                       : plugin_host::PluginLoader::UnpinnedHashing::kSkip);
    loader_ = owned_loader_.get();
  }

  Result<std::unique_ptr<plugin_host::ConnectorPlugin>> MakeConnector(const ConnectorRef& ref) {
    std::optional<std::string> pin;
    if (!ref.sha256.empty()) pin = ref.sha256;
    auto library = loader_->Load(ref.path, pin, AIRLOCK_KIND_CONNECTOR);
    if (!library.ok()) return library.status().WithContext("loading its connector");
    auto created = plugin_host::ConnectorPlugin::Create(*library, ref.config);
    if (!created.ok()) return created.status().WithContext("creating its connector");
    return created;
  }

  // No credential outlives the connectors' work: the secret window closes,
  // the libraries unload, resolved environment secrets are scrubbed.
  void ForgetCredentials() {
    StopEgress();
    host_.CloseSecretWindow();
    owned_loader_.reset();  // unloads the connector libraries: no instance remains
    loader_ = nullptr;
    if (env_.owns_process) ScrubEnvironment(host_.ResolvedEnvironmentNames());
    for (DatasetSpec& ds : spec_.datasets) ds.connector.config = nlohmann::json();
  }

  // The describe thread: each connector instance describes once; each
  // dataset takes the entry of its connector's catalog whose object (else
  // name) is the dataset's. Reported as {"datasets": {name: {"columns",
  // "description"?, "tags"?}}, "errors": {name: reason}}.
  void DescribeAndReport() {
    PrepareLoader();
    nlohmann::json described = nlohmann::json::object(), errors = nlohmann::json::object();
    {
      ScopedEnclaveHost routed(host_);
      std::map<std::string, Result<Catalog>> catalogs;
      for (const DatasetSpec& ds : spec_.datasets) {
        auto it = catalogs.find(ds.connector.name);
        if (it == catalogs.end()) {
          auto connector = MakeConnector(ds.connector);
          Result<Catalog> catalog =
              connector.ok() ? (*connector)->Describe() : Result<Catalog>(connector.status());
          it = catalogs.emplace(ds.connector.name, std::move(catalog)).first;
        }
        if (!it->second.ok()) {
          errors[ds.name] = it->second.status().message();
          continue;
        }
        const auto& entries = it->second->datasets;
        auto entry = std::find_if(entries.begin(), entries.end(), [&](const auto& d) {
          return !ds.pull.object.empty() && d.object == ds.pull.object;
        });
        if (entry == entries.end()) {
          entry = std::find_if(entries.begin(), entries.end(),
                               [&](const auto& d) { return d.name == ds.pull.dataset; });
        }
        if (entry == entries.end()) {
          errors[ds.name] = "its connector does not describe '" +
                            (ds.pull.object.empty() ? ds.pull.dataset : ds.pull.object) + "'";
          continue;
        }
        nlohmann::json columns = nlohmann::json::array();
        for (const auto& column : entry->columns) {
          columns.push_back({{"name", column.name}, {"type", column.type}});
        }
        nlohmann::json info = {{"columns", std::move(columns)}};
        if (!entry->description.empty()) info["description"] = entry->description;
        if (!entry->tags.empty()) info["tags"] = entry->tags;
        if (entry->rows >= 0) info["rows"] = entry->rows;
        described[ds.name] = std::move(info);
      }
    }
    ForgetCredentials();
    SendState("described", {{"datasets", described}, {"errors", errors}});
  }

  // The ingestion thread: pull, seal, and in job mode run the queries.
  void IngestAndSeal() {
    PrepareLoader();
    if (env_.owns_process) {
      sqlite3_soft_heap_limit64(spec_.limits.max_memory_bytes);
      sqlite3_hard_heap_limit64(spec_.limits.max_memory_bytes + kHeapSlackBytes);
    }
    const PullFunction pull = [this](size_t index, sdk::BatchConsumer& consumer) -> Status {
      // The connector's host calls on this thread reach this enclave.
      ScopedEnclaveHost routed(host_);
      AIRLOCK_ASSIGN_OR_RETURN(auto connector, MakeConnector(spec_.datasets[index].connector));
      Status pulled = connector->Pull(spec_.datasets[index].pull, consumer);
      connector.reset();  // its credentials go with it, as early as possible
      return pulled;
    };
    const ProgressFunction progress = [this](const nlohmann::json& doc) {
      (void)channel_.SendJson(FrameType::kProgress, doc);
    };
    Status ingested = ingestion_->Run(pull, progress);
    const auto sealing = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ingest_running_ = false;
    }
    // Egress ends with the pulls (nothing inside reaches a source again), and
    // whatever happened, no credential outlives ingestion.
    ForgetCredentials();

    if (ingested.ok()) ingested = ingestion_->PublishTables();
    if (ingested.ok()) {
      ingestion_->ReportKeys(
          [this](const std::string& note) { host_.Log(AIRLOCK_LOG_WARN, "enclave", note); });
    }
    std::unique_ptr<QueryEngine> engine;
    if (ingested.ok()) {
      auto opened = QueryEngine::Open(ingestion_->LaneUris(), spec_.limits, env_.query_workers,
                                      channel_, ingestion_->data_bytes());
      if (opened.ok()) {
        engine = std::move(opened).value();
      } else {
        ingested = opened.status().WithContext("sealing");
      }
    }
    if (ingested.ok()) {
      tables_ = TablesJson(ingestion_->tables());
      gate_->Describe(tables_);
    }
    // Seals: the writers go; only the read-only connections hold the data now.
    ingestion_->CloseWriters();
    if (!ingested.ok()) {
      engine.reset();
      SetFailed(ingested);
      return;
    }
    QueryEngine* queries = engine.get();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return;  // `engine` closes here
      engine_ = std::move(engine);
      phase_ = Phase::kSealed;
    }
    // Sealing: credentials cleared, tables published, query connections open.
    const int64_t seal_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - sealing)
                                .count();
    SendState("sealed", {{"tables", tables_},
                         {"credentials_cleared", true},
                         {"memory", MemoryUse()},
                         {"seal_us", seal_us}});
    if (spec_.mode == EnclaveMode::kJob) RunJob(*queries);
  }

  void RunJob(QueryEngine& queries) {
    nlohmann::json results = nlohmann::json::array();
    for (size_t i = 0; i < spec_.queries.size(); ++i) {
      const std::string id = "job-" + std::to_string(i);
      std::promise<QueryOutcome> finished;
      std::future<QueryOutcome> outcome_future = finished.get_future();
      Result<std::string> admitted = gate_->Admit(spec_.queries[i]);
      if (!admitted.ok()) {
        nlohmann::json end = {{"id", id}, {"rows", 0}};
        end.update(ErrorFields(admitted.status()));
        (void)channel_.SendJson(FrameType::kResultEnd, end);
        nlohmann::json entry = {{"id", id}, {"rows", 0}};
        entry.update(ErrorFields(admitted.status()));
        results.push_back(std::move(entry));
        continue;
      }
      // The kernel consumes job results on its reader thread: no credits.
      queries.Submit(
          id, std::move(admitted).value(),
          [&finished](const QueryOutcome& outcome) { finished.set_value(outcome); },
          /*flow_controlled=*/false);
      const QueryOutcome outcome = outcome_future.get();
      nlohmann::json entry = {{"id", id}, {"rows", outcome.rows}};
      if (!outcome.status.ok()) entry.update(ErrorFields(outcome.status));
      results.push_back(std::move(entry));
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return;
    }
    SendState("job_finished", {{"results", results}});
  }

  // Stops everything; idempotent.
  void Teardown() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutting_down_ = true;
      if (ingest_running_ && ingestion_ != nullptr) {
        ingestion_->Abort(Status::Cancelled("the enclave is shutting down"));
      }
      if (engine_ != nullptr) engine_->CancelAll();
    }
    // Unblocks any thread still writing to the kernel or waiting for a dial.
    channel_.Shutdown();
    CloseDials();
    StopEgress();
    if (worker_.joinable()) worker_.join();
    engine_.reset();     // joins the query workers; the read-only connections close
    ingestion_.reset();  // frees the in-memory databases
    owned_loader_.reset();
  }

  struct DialWaiter {
    bool answered = false;
    Result<UniqueFd> result = Status::Unavailable("no answer");
  };
  static constexpr std::chrono::seconds kDialTimeout{15};

  FrameChannel& channel_;
  EnclaveEnvironment env_;
  EnclaveHost host_;
  // In a process of its own the enclave owns its loader and unloads the
  // connectors once ingestion ends. Enclaves sharing a process share one
  // loader instead, so each library's entry point runs once per process
  // (a second run would rewrite the library's globals under its live users).
  std::unique_ptr<plugin_host::PluginLoader> owned_loader_;
  plugin_host::PluginLoader* loader_ = nullptr;  // ingestion thread once started
  EnclaveSpec spec_;                             // set before the ingestion thread starts
  std::unique_ptr<QueryGate> gate_;              // made with spec_
  std::unique_ptr<Ingestion> ingestion_;
  nlohmann::json tables_ = nlohmann::json::array();  // written before phase_ becomes kSealed
  std::thread worker_;

  std::mutex mutex_;
  Phase phase_ = Phase::kWaiting;        // GUARDED_BY(mutex_)
  Status failure_;                       // GUARDED_BY(mutex_)
  bool ingest_running_ = true;           // GUARDED_BY(mutex_)
  bool shutting_down_ = false;           // GUARDED_BY(mutex_)
  std::unique_ptr<QueryEngine> engine_;  // GUARDED_BY(mutex_) for assignment

  std::unique_ptr<EgressForwarder> egress_;  // set before the ingestion thread starts
  std::atomic<uint64_t> next_dial_{1};
  std::mutex dial_mutex_;
  std::condition_variable dial_cv_;
  std::map<std::string, std::shared_ptr<DialWaiter>> dials_;  // GUARDED_BY(dial_mutex_)
  bool dials_closed_ = false;                                 // GUARDED_BY(dial_mutex_)
};

}  // namespace

Result<CheckedConnector> CheckConnectorPlugin(const std::string& path) {
  AIRLOCK_ASSIGN_OR_RETURN(auto library,
                           SharedLoader().Load(path, std::nullopt, AIRLOCK_KIND_CONNECTOR));
  const plugin_host::PluginManifest& m = library->manifest();
  return CheckedConnector{m.name + " " + m.version + " (ABI " + std::to_string(m.abi_major) + "." +
                              std::to_string(m.abi_minor) + ")",
                          m.config_schema};
}

Status ServeEnclave(int fd, EnclaveEnvironment env) {
  if (fd < 0) return Status::InvalidArgument("ServeEnclave needs a connected descriptor");
  FrameChannel channel(fd);  // closes fd on every path
  try {
    EnclaveSession session(channel, std::move(env));
    return session.Serve();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("enclave runtime failed: ") + e.what());
  }
}

}  // namespace airlock::enclave
