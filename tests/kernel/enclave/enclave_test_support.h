// Shared fixtures for the enclave tests: an enclave runtime on one end of a
// socketpair, an EnclaveClient on the other, event capture and a consumer
// that keeps every batch.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "kernel/enclave/enclave_client.h"
#include "kernel/enclave/enclave_runtime.h"

namespace airlock::enclave::test_support {

using namespace std::chrono_literals;
using Json = nlohmann::json;

inline std::string GenConnectorPath() {
  return GEN_CONNECTOR_PATH;
}

// A dataset entry of the spec, pulled by the gen connector with `config`.
inline Json GenDataset(const std::string& name, Json config) {
  return {{"name", name},
          {"connector", {{"name", "gen"}, {"path", GenConnectorPath()}, {"config", config}}},
          {"pull", {{"dataset", name}, {"object", name}}}};
}

inline Json MakeSpec(std::vector<Json> datasets, Json limits = Json::object()) {
  return {{"request_id", "r-test"},
          {"mode", "interactive"},
          {"datasets", datasets},
          {"limits", limits}};
}

// Everything the kernel side hears, with waits on it.
class EventLog {
 public:
  EnclaveEvents Events() {
    EnclaveEvents events;
    events.on_progress = [this](const Json& j) { Add(progress_, j); };
    events.on_state = [this](const Json& j) { Add(states_, j); };
    events.on_audit = [this](const Json& j) { Add(audits_, j); };
    return events;
  }

  // Waits for a state document whose "state" is `state`; null Json on timeout.
  Json WaitForState(const std::string& state, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> lock(mutex_);
    Json found;
    cv_.wait_for(lock, timeout, [&] {
      for (const Json& s : states_) {
        if (s.value("state", "") == state) {
          found = s;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  // Waits for sealed or failed; returns that document.
  Json WaitForOutcome(std::chrono::milliseconds timeout = 30s) {
    std::unique_lock<std::mutex> lock(mutex_);
    Json found;
    cv_.wait_for(lock, timeout, [&] {
      for (const Json& s : states_) {
        const std::string st = s.value("state", "");
        if (st == "sealed" || st == "failed") {
          found = s;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::vector<Json> progress() const { return Copy(progress_); }
  std::vector<Json> states() const { return Copy(states_); }
  std::vector<Json> audits() const { return Copy(audits_); }

 private:
  void Add(std::vector<Json>& list, const Json& j) {
    std::lock_guard<std::mutex> lock(mutex_);
    list.push_back(j);
    cv_.notify_all();
  }
  std::vector<Json> Copy(const std::vector<Json>& list) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return list;
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Json> progress_, states_, audits_;
};

// Keeps every batch it receives. Cancellation can be requested from any thread.
class CollectingConsumer : public sdk::BatchConsumer {
 public:
  Status OnSchema(arrow::OwnedSchema schema) override {
    schemas++;
    fields.clear();
    for (int64_t i = 0; i < schema->n_children; ++i) {
      auto field = arrow::ParseField(*schema->children[i]);
      if (!field.ok()) return field.status();
      fields.push_back(*field);
    }
    return Status::Ok();
  }
  Status OnBatch(arrow::OwnedArray batch) override {
    rows += static_cast<uint64_t>(batch->length);
    max_batch_rows = std::max<uint64_t>(max_batch_rows, static_cast<uint64_t>(batch->length));
    batches.push_back(std::move(batch));
    return Status::Ok();
  }
  bool IsCancelled() override { return cancel.load(); }

  // Calls f(view, row) for every row of every batch.
  template <typename F>
  void ForEachRow(F&& f) const {
    for (const auto& batch : batches) {
      auto view = arrow::BatchView::Make(fields, *batch.get());
      ASSERT_TRUE(view.ok()) << view.status().ToString();
      for (size_t r = 0; r < view->num_rows(); ++r) f(*view, r);
    }
  }

  // Column 0 of the only row, as int64 (for COUNT / SUM checks).
  int64_t ScalarInt() const {
    int64_t value = -1;
    ForEachRow([&](const arrow::BatchView& v, size_t r) { value = v.GetInt64(0, r); });
    return value;
  }

  int schemas = 0;
  std::vector<arrow::Field> fields;
  std::vector<arrow::OwnedArray> batches;
  uint64_t rows = 0;
  uint64_t max_batch_rows = 0;
  std::atomic<bool> cancel{false};
};

// An enclave runtime served in a thread on one end of a socketpair, and an
// EnclaveClient on the other.
class InProcessEnclave {
 public:
  explicit InProcessEnclave(EnclaveEnvironment env = {}) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    enclave_fd_ = fds[0];
    kernel_fd_ = fds[1];
    env.progress_interval = 20ms;
    if (!env.log) env.log = [](int32_t, std::string_view, std::string_view) {};
    thread_ = std::thread([this, env] {
      status_ = ServeEnclave(enclave_fd_, env);
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
      cv_.notify_all();
    });
  }
  ~InProcessEnclave() {
    if (client) client->Close();
    if (kernel_fd_ >= 0) ::close(kernel_fd_);
    if (thread_.joinable()) thread_.join();
  }

  // Starts the client over the kernel end (which it then owns).
  void StartClient(EnclaveEvents events) {
    auto started = EnclaveClient::Start(kernel_fd_, std::move(events));
    ASSERT_TRUE(started.ok());
    kernel_fd_ = -1;
    client = std::move(started).value();
  }

  // The raw kernel end, for tests that speak the protocol by hand.
  int TakeKernelFd() { return std::exchange(kernel_fd_, -1); }

  // Waits for ServeEnclave to return.
  bool WaitFinished(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return finished_; });
  }
  Status status() const { return status_; }

  std::unique_ptr<EnclaveClient> client;

 private:
  int enclave_fd_ = -1;
  int kernel_fd_ = -1;
  std::thread thread_;
  Status status_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool finished_ = false;
};

}  // namespace airlock::enclave::test_support
