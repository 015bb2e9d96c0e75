// The data enclave runtime: the far end of the kernel's control channel.
//
// LIFECYCLE (frames in channel.h, spec in enclave_spec.h):
//  1. Reads the Spec frame and sends State {"state":"ingesting","datasets":[...]}.
//  2. Loads each dataset's connector here, in the enclave (never in the
//     kernel), and pulls every dataset concurrently into in-memory SQLite
//     (ingestion.h), sending Progress frames as it goes.
//  3. If any pull fails: State {"state":"failed","reason":"dataset X: ...",
//     "code"}; everything is dropped and nothing is ever queryable. Otherwise
//     connectors are destroyed, secret resolution is closed (and, in a
//     process of its own, the connector libraries are unloaded and env:
//     secrets are scrubbed from the environment), staging tables take their
//     dataset names, and the
//     enclave SEALS: only read-only query connections remain (query_engine.h).
//     State {"state":"sealed","tables":[{"name","rows","columns":[{"name",
//     "type"}]}],"credentials_cleared":true}.
//  4. Serves Query / Cancel / Tables frames. In job mode it first runs the
//     spec's queries as "job-0", "job-1", ... (results streamed like any
//     query), then sends State {"state":"job_finished","results":[{"id",
//     "rows","code"?,"error"?}]}.
//  5. Returns when the kernel sends Shutdown or closes the channel; all
//     connections close and the in-memory databases are freed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/enclave/enclave_host.h"

namespace airlock::enclave {

struct EnclaveEnvironment {
  // True when this process hosts only this enclave (the airlock-enclave
  // executable). The runtime then also bounds SQLite's process-wide heap by
  // limits.max_memory_bytes, unloads the connector libraries and scrubs
  // resolved env: secrets from the environment after ingestion. In a shared
  // process (the kernel's in-process isolator) only the per-database memory
  // bound applies and connector libraries stay loaded (shared by enclaves).
  bool owns_process = false;
  // Where enclave and connector logs go; LogToStderr when empty.
  LogFunction log;
  // Concurrent queries (each worker has its own read-only connection).
  size_t query_workers = 4;
  // Parallel ingestion writers (each with its own in-memory database).
  size_t ingest_lanes = 4;
  // How long to wait for the Spec frame.
  std::chrono::milliseconds spec_timeout{60000};
  // Progress frames per dataset are at least this far apart (plus a final one).
  std::chrono::milliseconds progress_interval{100};
  // Once sealed, how often the enclave reports its memory to the kernel
  // (a "memory" state; the sealed state carries the first report).
  std::chrono::milliseconds memory_report_interval{5000};
};

// Runs an enclave on `fd` (a connected SOCK_STREAM socket) in the calling
// thread until the kernel sends Shutdown or closes the channel. Takes
// ownership of `fd` and closes it before returning, on every path. Returns Ok
// after an orderly end (even when ingestion failed: that was reported to the
// kernel), or why the channel could not be served.
Status ServeEnclave(int fd, EnclaveEnvironment env = {});

// What --check-plugin found: "<name> <version> (ABI <major>.<minor>)" and
// the configuration schema the manifest declares (null when none).
struct CheckedConnector {
  std::string summary;
  nlohmann::json config_schema;
};

// Loads the connector plugin at `path` as an enclave would (file checks,
// entry point, ABI, kind connector, mandatory functions) without making an
// instance. For `airlock-enclave --check-plugin`: the kernel never maps
// connector code into its own process.
Result<CheckedConnector> CheckConnectorPlugin(const std::string& path);

}  // namespace airlock::enclave
