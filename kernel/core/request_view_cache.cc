#include "kernel/core/request_view_cache.h"

#include <mutex>
#include <utility>

namespace airlock {

RequestViewCache::RequestViewCache(size_t capacity) : capacity_(capacity) {
  entries_.reserve(capacity);
}

std::shared_ptr<const std::string> RequestViewCache::Find(const Stored& stored,
                                                          const Progress& progress) const {
  if (stored == nullptr) return nullptr;
  std::shared_lock lock(mu_);
  const auto it = entries_.find(std::string_view(stored->id));
  if (it == entries_.end() || it->second.stored != stored || it->second.progress != progress) {
    return nullptr;
  }
  return it->second.view;
}

size_t RequestViewCache::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

void RequestViewCache::Put(Stored stored, Progress progress,
                           std::shared_ptr<const std::string> view) {
  if (stored == nullptr || capacity_ == 0) return;
  std::unique_lock lock(mu_);
  auto it = entries_.find(std::string_view(stored->id));
  if (it == entries_.end()) {
    if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
    it = entries_.emplace(stored->id, Entry{}).first;
  }
  it->second = Entry{std::move(stored), std::move(progress), std::move(view)};
}

}  // namespace airlock
