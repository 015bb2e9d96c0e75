#include "kernel/agent/kernel_bridge.h"

#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace airlock::agent {

using enclave::FrameType;
using nlohmann::json;

namespace {

// Frames to the supervisor must not wait long: it always reads promptly.
constexpr std::chrono::milliseconds kLocalSendTimeout{10000};

std::string IdOf(std::string_view payload) {
  auto doc = enclave::ParseJsonObject(payload, "frame");
  if (!doc.ok()) return "";
  auto id = doc->find("id");
  return id != doc->end() && id->is_string() ? id->get<std::string>() : "";
}

}  // namespace

Result<std::shared_ptr<KernelBridge>> KernelBridge::Open(std::string agent, uint32_t stream,
                                                         std::function<void()> on_finished) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Status::Unavailable("cannot create the enclave's local channel");
  }
  std::shared_ptr<KernelBridge> bridge(
      new KernelBridge(std::move(agent), stream, fds[0], fds[1], std::move(on_finished)));
  bridge->relay_ = std::thread([raw = bridge.get()] { raw->RelayLoop(); });
  return bridge;
}

KernelBridge::KernelBridge(std::string agent, uint32_t stream, int bridge_fd, int supervisor_fd,
                           std::function<void()> on_finished)
    : agent_(std::move(agent)),
      stream_(stream),
      channel_(bridge_fd),
      supervisor_fd_(supervisor_fd),
      on_finished_(std::move(on_finished)) {}

KernelBridge::~KernelBridge() {
  Close();
  if (supervisor_fd_ >= 0) ::close(supervisor_fd_);
}

int KernelBridge::ReleaseSupervisorFd() {
  const int fd = supervisor_fd_;
  supervisor_fd_ = -1;
  return fd;
}

void KernelBridge::Online(std::shared_ptr<LinkConnection> link) {
  std::lock_guard lock(mu_);
  link_ = std::move(link);
}

void KernelBridge::Offline(const std::string& reason) {
  std::map<std::string, FrameType> pending;
  std::string message;
  {
    std::lock_guard lock(mu_);
    link_.reset();
    offline_reason_ = reason;
    pending.swap(outstanding_);
    message = "agent '" + agent_ + "' is offline: " + reason;
  }
  for (const auto& [id, type] : pending) AnswerUnavailable(id, type, message);
}

void KernelBridge::Lost(const std::string& reason) {
  (void)channel_.SendJson(FrameType::kState, json{{"state", "failed"}, {"reason", reason}},
                          kLocalSendTimeout);
}

void KernelBridge::AnswerUnavailable(const std::string& id, FrameType request,
                                     const std::string& message) {
  json answer = {{"id", id}, {"error", message}, {"code", "unavailable"}};
  if (request == FrameType::kQuery) {
    answer["rows"] = 0;
    (void)channel_.SendJson(FrameType::kResultEnd, answer, kLocalSendTimeout);
  } else {
    (void)channel_.SendJson(FrameType::kTablesResult, answer, kLocalSendTimeout);
  }
}

void KernelBridge::FromAgent(FrameType type, std::string_view payload) {
  if (type == FrameType::kResultEnd || type == FrameType::kTablesResult) {
    const std::string id = IdOf(payload);
    std::lock_guard lock(mu_);
    outstanding_.erase(id);
  }
  if (type == FrameType::kDial || type == FrameType::kDialResult) return;  // served on the agent
  (void)channel_.Send(type, payload, kLocalSendTimeout);
}

void KernelBridge::EndedByAgent() {
  channel_.Shutdown();
}

void KernelBridge::RelayLoop() {
  for (;;) {
    auto frame = channel_.Receive();
    if (!frame.ok()) break;
    std::shared_ptr<LinkConnection> link;
    std::string message;
    const bool request = frame->type == FrameType::kQuery || frame->type == FrameType::kTables;
    const std::string id = request ? IdOf(frame->payload) : "";
    {
      std::lock_guard lock(mu_);
      link = link_;
      if (link && request) outstanding_[id] = frame->type;
      if (!link) message = "agent '" + agent_ + "' is offline: " + offline_reason_;
    }
    if (link) {
      link->Send(LinkFrameType::kEnclave, stream_,
                 EncodeEnclavePayload(frame->type, frame->payload));
    } else if (request) {
      AnswerUnavailable(id, frame->type, message);
    }
    if (frame->type == FrameType::kShutdown) break;
  }
  if (on_finished_) on_finished_();
}

void KernelBridge::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    link_.reset();
  }
  channel_.Shutdown();
  if (relay_.joinable()) {
    if (relay_.get_id() == std::this_thread::get_id()) {
      relay_.detach();
    } else {
      relay_.join();
    }
  }
}

}  // namespace airlock::agent
