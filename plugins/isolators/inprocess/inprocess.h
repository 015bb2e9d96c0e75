// The in-process isolator. DEVELOPMENT ONLY, NO ISOLATION: each enclave is a
// thread of the process that loaded the plugin (the kernel), running the
// host's enclave runtime on one end of a socketpair. Connectors, their
// credentials and the data they pull share the kernel's address space, so a
// faulty or hostile connector can read or corrupt anything the kernel holds.
// It exists so the whole lifecycle can be exercised on a laptop without
// namespaces, cgroups or containers.
//
// Thread-safety: every public method may be called concurrently.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::isolators::inprocess {

// The thread serving one enclave, and the means to make it stop. The thread
// runs host.EnclaveServe(enclave end); Stop() shuts the enclave end down (via
// a duplicate descriptor, since EnclaveServe owns and closes the original),
// which the runtime sees as the kernel hanging up, then joins the thread.
class ServeThread {
 public:
  // Takes ownership of `shutdown_fd` (a dup of the enclave end).
  explicit ServeThread(int shutdown_fd) : shutdown_fd_(shutdown_fd) {}
  ~ServeThread() { Stop(); }
  ServeThread(const ServeThread&) = delete;
  ServeThread& operator=(const ServeThread&) = delete;

  // Starts the thread; it takes `enclave_fd`. On failure `enclave_fd` is
  // closed and the Status says why.
  Status Start(sdk::Host host, int enclave_fd, std::string request_id);

  // Idempotent; safe from several threads at once. Returns once the runtime
  // has returned and every descriptor this object holds is closed.
  void Stop();

 private:
  std::mutex mutex_;
  int shutdown_fd_;     // GUARDED_BY(mutex_); -1 once closed
  std::thread thread_;  // GUARDED_BY(mutex_)
};

// The handle the host holds for one enclave (released through terminate()).
class InprocessEnclave final : public sdk::Enclave {
 public:
  InprocessEnclave(std::shared_ptr<ServeThread> serve, std::string request_id)
      : serve_(std::move(serve)), request_id_(std::move(request_id)) {}
  ~InprocessEnclave() override { serve_->Stop(); }

  ServeThread& serve() { return *serve_; }
  const std::string& request_id() const { return request_id_; }

 private:
  std::shared_ptr<ServeThread> serve_;
  std::string request_id_;
};

class InprocessIsolator final : public sdk::Isolator {
 public:
  static Result<std::unique_ptr<InprocessIsolator>> Create(const Json& config,
                                                           const sdk::Host& host);
  // Stops every enclave this instance started that is still running.
  ~InprocessIsolator() override;

  // spec: {"request_id", "limits", "egress"}; limits and egress cannot be
  // enforced here and are reported as ignored in a WARN log line.
  // On success control_fd is the kernel end of a connected AF_UNIX stream
  // socket whose other end is served by host.EnclaveServe on a new thread.
  // FailedPrecondition when the host offers no enclave runtime.
  Result<sdk::EnclaveLaunch> Provision(const Json& spec) override;

  // Shuts the enclave's channel down and joins its thread (idempotent).
  Status Terminate(sdk::Enclave& enclave) override;

  // {"isolator":"inprocess","isolation":"none","development_only":true,"mechanisms":{}}
  Json DescribeIsolation() override;

  // In-process enclaves die with the process that ran them: nothing to reap.
  Status ReapOrphans() override { return Status::Ok(); }

 private:
  explicit InprocessIsolator(sdk::Host host) : host_(std::move(host)) {}

  sdk::Host host_;
  std::mutex mutex_;
  std::vector<std::weak_ptr<ServeThread>> started_;  // GUARDED_BY(mutex_)
};

}  // namespace airlock::isolators::inprocess
