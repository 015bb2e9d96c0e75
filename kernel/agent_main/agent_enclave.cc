#include "kernel/agent_main/agent_enclave.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "kernel/core/egress_dialer.h"

namespace airlock::agent {

using enclave::FrameType;
using nlohmann::json;

namespace {
constexpr std::chrono::milliseconds kEnclaveSendTimeout{10000};
constexpr std::chrono::seconds kDialTimeout{10};
}  // namespace

Result<std::unique_ptr<AgentEnclave>> AgentEnclave::Provision(
    const plugin_host::IsolatorPlugin& isolator, uint32_t stream, const json& spec,
    std::shared_ptr<LinkConnection> link, boost::asio::thread_pool& dial_pool) {
  std::set<std::string> approved;
  if (auto egress = spec.find("egress"); egress != spec.end() && egress->is_array()) {
    for (const auto& route : *egress) {
      if (route.is_object() && route.contains("endpoint") && route["endpoint"].is_string()) {
        approved.insert(route["endpoint"].get<std::string>());
      }
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(auto handle, isolator.Provision(spec));
  const int fd = handle->ReleaseControlFd();
  if (fd < 0) return Status::Internal("the isolator gave no control channel");
  std::unique_ptr<AgentEnclave> out(new AgentEnclave(
      stream, std::move(handle), fd, std::move(approved), std::move(link), dial_pool));
  out->relay_ = std::thread([raw = out.get()] { raw->RelayLoop(); });
  return out;
}

AgentEnclave::AgentEnclave(uint32_t stream, std::unique_ptr<plugin_host::EnclaveHandle> handle,
                           int fd, std::set<std::string> approved,
                           std::shared_ptr<LinkConnection> link,
                           boost::asio::thread_pool& dial_pool)
    : stream_(stream),
      handle_(std::move(handle)),
      egress_(std::make_shared<Egress>()),
      link_(std::move(link)),
      dial_pool_(dial_pool) {
  egress_->stream = stream;
  egress_->channel = std::make_shared<enclave::FrameChannel>(fd);
  egress_->approved = std::move(approved);
  egress_->link = link_;
}

AgentEnclave::~AgentEnclave() {
  Terminate();
}

void AgentEnclave::FromKernel(FrameType type, std::string_view payload) {
  if (type == FrameType::kDialResult) return;  // dials are answered here, never by the kernel
  const Status sent = egress_->channel->Send(type, payload, kEnclaveSendTimeout);
  if (!sent.ok())
    spdlog::debug("enclave {}: relay to the enclave failed: {}", stream_, sent.ToString());
}

void AgentEnclave::RelayLoop() {
  std::string reason = "enclave channel closed";
  for (;;) {
    auto frame = egress_->channel->Receive();
    if (!frame.ok()) {
      reason = frame.status().message();
      break;
    }
    if (frame->type == FrameType::kDial) {
      auto doc = enclave::ParseJsonObject(frame->payload, "dial");
      if (!doc.ok()) continue;
      const std::string id = doc->value("id", "");
      const std::string endpoint = doc->value("endpoint", "");
      boost::asio::post(dial_pool_,
                        [egress = egress_, id, endpoint] { Dial(egress, id, endpoint); });
      continue;
    }
    if (frame->type == FrameType::kState) {
      auto doc = enclave::ParseJsonObject(frame->payload, "state");
      if (doc.ok() && doc->value("state", "") != "ingesting") egress_->sealed = true;
    }
    link_->Send(LinkFrameType::kEnclave, stream_,
                EncodeEnclavePayload(frame->type, frame->payload));
  }
  if (!egress_->terminating)
    link_->Send(LinkFrameType::kClosed, stream_, json{{"reason", reason}}.dump());
}

void AgentEnclave::Dial(const std::shared_ptr<Egress>& egress, const std::string& id,
                        const std::string& endpoint) {
  if (egress->terminating) return;
  Result<enclave::UniqueFd> connected = Status::Unavailable("not dialled");
  if (egress->sealed) {
    connected = Status::PermissionDenied("egress ends when the enclave is sealed");
  } else if (!egress->approved.count(endpoint)) {
    connected = Status::PermissionDenied("endpoint is not approved for this request");
  } else {
    connected = DialTcp(endpoint, kDialTimeout);
  }
  spdlog::info("enclave {}: egress to {}: {}", egress->stream, endpoint.substr(0, 300),
               connected.ok() ? "connected" : connected.status().message());
  // The kernel audits every egress decision, as it does for its own enclaves.
  json report = {
      {"type", "egress"},
      {"stream", egress->stream},
      {"endpoint", endpoint.substr(0, 300)},
      {"outcome", connected.ok() ? "connected" : StatusCodeName(connected.status().code())}};
  if (!connected.ok()) report["reason"] = connected.status().message();
  egress->link->SendControl(report);
  if (!connected.ok()) {
    (void)egress->channel->SendJson(FrameType::kDialResult,
                                    json{{"id", id},
                                         {"error", connected.status().message()},
                                         {"code", StatusCodeName(connected.status().code())}});
    return;
  }
  (void)egress->channel->SendWithFd(FrameType::kDialResult, json{{"id", id}}.dump(),
                                    connected->get());
}

void AgentEnclave::Terminate() {
  std::call_once(terminate_once_, [this] {
    egress_->terminating = true;
    egress_->channel->Shutdown();
    if (relay_.joinable()) relay_.join();
    const Status s = handle_->Terminate();
    if (!s.ok()) spdlog::error("enclave {}: terminate failed: {}", stream_, s.ToString());
  });
}

}  // namespace airlock::agent
