#include "kernel/state/request_text_cache.h"

#include <mutex>
#include <utility>

namespace airlock {

RequestTextCache::RequestTextCache(size_t capacity) : capacity_(capacity) {
  entries_.reserve(capacity);
}

RequestTextCache::Snapshot RequestTextCache::Find(std::string_view id) const {
  std::shared_lock lock(mu_);
  const auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second;
}

uint64_t RequestTextCache::generation() const {
  std::shared_lock lock(mu_);
  return generation_;
}

size_t RequestTextCache::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

void RequestTextCache::Put(Snapshot text) {
  auto it = entries_.find(std::string_view(text->id));
  if (it != entries_.end()) {
    it->second = std::move(text);
    return;
  }
  if (capacity_ == 0) return;
  if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  std::string id = text->id;
  entries_.emplace(std::move(id), std::move(text));
}

void RequestTextCache::Fill(Snapshot text, uint64_t generation_at_read) {
  if (text == nullptr) return;
  std::unique_lock lock(mu_);
  // A group published since the read may hold a newer version of this id;
  // one cached already is at least as new as the read.
  if (generation_ != generation_at_read || entries_.contains(text->id)) return;
  Put(std::move(text));
}

void RequestTextCache::Publish(std::vector<Committed> committed) {
  // Allocate before taking the lock readers share.
  std::vector<std::shared_ptr<StoredRequestText>> texts;
  texts.reserve(committed.size());
  for (Committed& c : committed) {
    texts.push_back(std::make_shared<StoredRequestText>(std::move(c.text)));
  }
  std::unique_lock lock(mu_);
  ++generation_;
  for (size_t i = 0; i < texts.size(); ++i) {
    StoredRequestText& text = *texts[i];
    if (!committed[i].inserted) {
      const auto it = entries_.find(text.id);
      if (it == entries_.end()) continue;
      text.created_at_us = it->second->created_at_us;
    }
    Put(std::move(texts[i]));
  }
}

}  // namespace airlock
