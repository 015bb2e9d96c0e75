// One describe enclave, start to end: provisioned by an isolator, given a
// describe-mode spec, its dials to approved endpoints served, its answer
// awaited, and destroyed. The connectors describe the datasets they serve
// (columns, description, tags) there, never in the caller: their code,
// their secrets and their sources stay where a pull would have them. The
// kernel runs it for its own datasets (EnclaveSupervisor::DescribeDatasets),
// an agent for the datasets its site owns.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <string>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/plugin_host/plugin_instances.h"

namespace airlock {

struct DescribeRun {
  const plugin_host::IsolatorPlugin* isolator = nullptr;
  nlohmann::json isolator_spec;                   // what the isolator provisions
  nlohmann::json enclave_spec;                    // mode "describe"
  std::set<std::string> allowed_endpoints;        // dials to others are refused
  boost::asio::thread_pool* dial_pool = nullptr;  // runs the dials
  std::function<void(nlohmann::json)> audit;      // the enclave's audit events; may be empty
  std::chrono::milliseconds timeout{30000};
  const std::atomic<bool>* stop = nullptr;  // set: give up (Cancelled)
};

// {"datasets": {name: {"columns","description"?,"tags"?}}, "errors": {name:
// reason}}. DeadlineExceeded after the timeout; Unavailable when the enclave
// failed.
Result<nlohmann::json> RunDescribeEnclave(const DescribeRun& run);

}  // namespace airlock
