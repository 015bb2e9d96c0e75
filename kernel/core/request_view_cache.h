// Rendered GET /v1/requests/{id} answers, kept with the two snapshots each
// was rendered from: the stored text (StateStore::LoadText; a new snapshot
// after every save) and the live ingestion progress
// (EnclaveSupervisor::Progress; a new document after every report). A
// request read again with both snapshots unchanged is answered with the text
// rendered before, which is byte for byte what rendering again would give.
// The entry holds both snapshots, so an address can never be reused by a
// newer one while it is cached.
//
// Bounded: at most `capacity` entries; when full an arbitrary one is evicted.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "kernel/state/state_store.h"

namespace airlock {

class RequestViewCache {
 public:
  using Stored = std::shared_ptr<const StoredRequestText>;
  using Progress = std::shared_ptr<const nlohmann::json>;

  explicit RequestViewCache(size_t capacity);

  // The view rendered from exactly these snapshots, or null.
  std::shared_ptr<const std::string> Find(const Stored& stored, const Progress& progress) const;

  // Remembers `view`, rendered from `stored` and `progress`, replacing what
  // was kept for the same request.
  void Put(Stored stored, Progress progress, std::shared_ptr<const std::string> view);

  // Entries held now (at most the capacity).
  size_t size() const;

 private:
  struct Entry {
    Stored stored;
    Progress progress;
    std::shared_ptr<const std::string> view;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  const size_t capacity_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;  // guarded by mu_
};

}  // namespace airlock
