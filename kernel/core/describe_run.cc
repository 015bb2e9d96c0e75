#include "kernel/core/describe_run.h"

#include <unistd.h>

#include <future>
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "kernel/core/egress_dialer.h"
#include "kernel/enclave/enclave_client.h"

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

Result<json> RunDescribeEnclave(const DescribeRun& run) {
  auto provisioned = run.isolator->Provision(run.isolator_spec);
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
  events.on_dial = [session, allowed = run.allowed_endpoints, pool = run.dial_pool](
                       const std::string& dial_id, const std::string& endpoint) {
    boost::asio::post(*pool, [session, allowed, dial_id, endpoint] {
      std::shared_ptr<enclave::EnclaveClient> client;
      {
        std::lock_guard lock(session->mu);
        client = session->client;
      }
      if (client == nullptr) return;
      Result<enclave::UniqueFd> connected =
          allowed.count(endpoint) ? DialTcp(endpoint, std::chrono::seconds(10))
                                  : Result<enclave::UniqueFd>(Status::PermissionDenied(
                                        "endpoint is not a source of these datasets"));
      if (!connected.ok()) {
        spdlog::warn("describing datasets: dial {} refused: {}", endpoint,
                     connected.status().message());
      }
      (void)client->ReplyDial(dial_id, std::move(connected));
    });
  };
  events.on_audit = [audit = run.audit](const json& event) {
    if (audit) audit(event);
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
  Status outcome = client->SendSpec(run.enclave_spec);
  json state;
  if (outcome.ok()) {
    const auto deadline = std::chrono::steady_clock::now() + run.timeout;
    while (answered.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (run.stop != nullptr && run.stop->load()) {
        outcome = Status::Cancelled("stopping");
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        outcome =
            Status::DeadlineExceeded("the connectors did not describe their datasets within " +
                                     std::to_string(run.timeout.count()) + " ms");
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
    spdlog::warn("describing datasets: terminating the enclave: {}", ended.message());
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
