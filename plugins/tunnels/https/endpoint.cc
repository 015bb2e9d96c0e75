#include "endpoint.h"

namespace airlock::tunnels::https {

// ---------------------------------------------------------------------------
// EndpointState

bool EndpointState::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

bool EndpointState::Bind(const std::shared_ptr<SessionHandle>& session) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return false;
  bool seen = false;
  std::erase_if(sessions_, [&](const std::weak_ptr<SessionHandle>& weak) {
    auto live = weak.lock();
    if (live == session) seen = true;
    return live == nullptr;  // forget connections that are gone
  });
  if (!seen) sessions_.push_back(session);
  return true;
}

EndpointState::Lease::~Lease() {
  if (state_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex_);
    --state_->leases_;
  }
  state_->leases_done_.notify_all();
}

EndpointState::JobSlot::~JobSlot() {
  if (state_ != nullptr) state_->running_jobs_.fetch_sub(1);
}

std::optional<EndpointState::JobSlot> EndpointState::TryStartJob() {
  uint32_t running = running_jobs_.load();
  do {
    if (running >= max_concurrent_jobs_) return std::nullopt;
  } while (!running_jobs_.compare_exchange_weak(running, running + 1));
  return JobSlot(this);
}

std::optional<EndpointState::Lease> EndpointState::Acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return std::nullopt;
  ++leases_;
  return Lease(this);
}

void EndpointState::Close() {
  std::vector<std::weak_ptr<SessionHandle>> sessions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    sessions.swap(sessions_);
  }
  for (auto& weak : sessions) {
    if (auto session = weak.lock()) session->ForceClose();
  }
  // The host's channel is valid only until close() returns: wait for every
  // query and schema lookup that is still inside it.
  std::unique_lock<std::mutex> lock(mutex_);
  leases_done_.wait(lock, [&] { return leases_ == 0; });
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
  endpoint->Close();  // outside the registry lock: it may wait for queries
}

void EndpointRegistry::CloseAll() {
  std::vector<std::shared_ptr<EndpointState>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, endpoint] : open_) all.push_back(endpoint);
  }
  for (auto& endpoint : all) Close(endpoint);
}

}  // namespace airlock::tunnels::https
