// A bounded, write-through cache of stored requests as text
// (StoredRequestText), so that a GET /v1/requests/{id} of a request the
// kernel wrote or read recently does not go to SQLite (a read transaction,
// its file locks and a row copy cost more than rendering the answer).
//
// Coherence rests on one writer: the state store's writer thread publishes
// every committed group here, in commit order, before it answers the savers,
// so a Save that returned is visible to every later Find. A reader that
// missed and read the row itself fills the cache only if no group was
// published since it began reading (Fill's `generation_at_read`); a fill can
// therefore never put an older version over a newer one, even after the
// newer one was evicted. The store file must have no other writer, which
// SqliteStateStore enforces with a lock file.
//
// Bounded: at most `capacity` entries; when full, an arbitrary entry is
// evicted (it is read from SQLite again on its next miss). Entries are
// immutable snapshots shared with readers, so an answer never changes under
// a reader that holds one.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernel/state/state_store.h"

namespace airlock {

class RequestTextCache {
 public:
  using Snapshot = std::shared_ptr<const StoredRequestText>;

  // A committed save, as the writer publishes it. An update does not carry
  // the stored creation time (the store keeps the one of the insert).
  struct Committed {
    StoredRequestText text;
    bool inserted = false;
  };

  explicit RequestTextCache(size_t capacity);

  // The cached snapshot of `id`, or null.
  Snapshot Find(std::string_view id) const;

  // Read before a miss goes to the store; passed back to Fill.
  uint64_t generation() const;

  // Caches `text`, read from the store after generation() returned
  // `generation_at_read`, unless a group was published since or the id is
  // cached already.
  void Fill(Snapshot text, uint64_t generation_at_read);

  // Writer only, in commit order: makes the committed saves what Find
  // answers. An update of an id that is not cached is not added (its
  // creation time is not known here); it is read on its next miss.
  void Publish(std::vector<Committed> committed);

  size_t size() const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, Snapshot, Hash, std::equal_to<>>;

  // Caller holds mu_ exclusively.
  void Put(Snapshot text);

  const size_t capacity_;
  mutable std::shared_mutex mu_;
  Map entries_;              // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_
};

}  // namespace airlock
