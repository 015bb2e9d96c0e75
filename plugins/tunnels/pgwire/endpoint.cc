#include "endpoint.h"

namespace airlock::tunnels::pgwire {

// ---------------------------------------------------------------------------
// EndpointState

bool EndpointState::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

EndpointState::AttachResult EndpointState::Attach(const std::shared_ptr<SessionHandle>& session) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return AttachResult::kClosed;
  if (sessions_.size() >= max_connections_) return AttachResult::kTooManyConnections;
  sessions_.emplace_back(session.get(), session);
  return AttachResult::kAttached;
}

void EndpointState::Detach(const SessionHandle* session) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(sessions_, [&](const auto& entry) { return entry.first == session; });
}

EndpointState::Lease::~Lease() {
  if (state_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex_);
    --state_->leases_;
  }
  state_->leases_done_.notify_all();
}

std::optional<EndpointState::Lease> EndpointState::Acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return std::nullopt;
  ++leases_;
  return Lease(this);
}

void EndpointState::Close(std::chrono::milliseconds grace) {
  std::vector<std::shared_ptr<SessionHandle>> sessions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    for (auto& [raw, weak] : sessions_) {
      if (auto live = weak.lock()) sessions.push_back(std::move(live));
    }
    sessions_.clear();
  }
  for (auto& session : sessions) session->Revoke();
  // The host's channel is valid only until close() returns: wait for every
  // statement still inside it. Running statements see closed() and stop.
  std::unique_lock<std::mutex> lock(mutex_);
  if (!leases_done_.wait_for(lock, grace, [&] { return leases_ == 0; })) {
    lock.unlock();
    for (auto& session : sessions) session->Kill();
    lock.lock();
    leases_done_.wait(lock, [&] { return leases_ == 0; });
  }
}

// ---------------------------------------------------------------------------
// EndpointRegistry

Status EndpointRegistry::Add(std::shared_ptr<EndpointState> endpoint) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string& id = endpoint->request_id();
  if (open_.count(id) != 0) {
    return Status::AlreadyExists("an endpoint for request '" + id + "' is already open");
  }
  closed_.erase(id);  // reopened: no longer closed (its order entry ages out harmlessly)
  open_.emplace(id, std::move(endpoint));
  return Status::Ok();
}

std::shared_ptr<EndpointState> EndpointRegistry::Find(
    std::string_view request_id, std::optional<sdk::CloseReason>* closed) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string id(request_id);
  closed->reset();
  if (auto it = open_.find(id); it != open_.end()) return it->second;
  if (auto it = closed_.find(id); it != closed_.end()) *closed = it->second;
  return nullptr;
}

void EndpointRegistry::Close(const std::shared_ptr<EndpointState>& endpoint) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string& id = endpoint->request_id();
    auto it = open_.find(id);
    if (it != open_.end() && it->second == endpoint) {
      open_.erase(it);
      if (closed_.insert_or_assign(id, endpoint->close_reason()).second) {
        closed_order_.push_back(id);
        while (closed_order_.size() > kMaxRememberedRevocations) {
          closed_.erase(closed_order_.front());
          closed_order_.pop_front();
        }
      }
    }
  }
  endpoint->Close();  // outside the registry lock: it may wait for statements
}

void EndpointRegistry::CloseAll() {
  std::vector<std::shared_ptr<EndpointState>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, endpoint] : open_) all.push_back(endpoint);
  }
  for (auto& endpoint : all) Close(endpoint);
}

}  // namespace airlock::tunnels::pgwire
