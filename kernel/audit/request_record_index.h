// Where each request's records lie in the audit file (FileAuditLog), for
// AuditLog::ForRequest.
//
// Bounded: it keeps the locations of at most `max_requests` requests, those
// audited most recently; the others are dropped as newer ones arrive, so a
// kernel that runs for months does not keep an entry for every request it
// ever saw. What was dropped is still in the file: Lookup says how far back
// the file must be read for it (ScanRequestRecords), and the caller reads
// only that part.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::audit_internal {

// One record's place in the file: its offset and its length with the newline.
struct RecordLocation {
  uint64_t offset = 0;
  uint32_t length = 0;
};

// The event every request's audit trail begins with.
inline constexpr std::string_view kStartEvent = "request.submitted";

class RequestRecordIndex {
 public:
  explicit RequestRecordIndex(size_t max_requests);

  // Record `location` (after every earlier one) belongs to `request_id`;
  // `starts_request` when it is the request's first record (kStartEvent).
  void Add(std::string_view request_id, RecordLocation location, bool starts_request);

  struct Found {
    // The request's records in the file from `scan_before` on, oldest first.
    std::vector<RecordLocation> indexed;
    // Its records before this offset were dropped from the index: read the
    // file up to here for them. 0 when the index holds all of them.
    uint64_t scan_before = 0;
  };
  Found Lookup(std::string_view request_id) const;

  size_t requests() const;

 private:
  struct Entry {
    std::vector<RecordLocation> locations;
    uint64_t scan_before = 0;
    std::list<std::string>::iterator recency;  // into recency_
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  const size_t max_requests_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;  // guarded by mu_
  std::list<std::string> recency_;  // guarded by mu_: least recently audited first
  // The end of the last record of any request dropped so far: records of
  // requests not in the index lie before it. Guarded by mu_.
  uint64_t dropped_before_ = 0;
};

// Reads up to `size` bytes of `fd` at `offset` (fewer only at its end).
Result<size_t> ReadAuditBytes(int fd, char* out, size_t size, uint64_t offset);

// Reads `fd` (an audit file) from its start up to `before` and returns the
// records whose "request_id" is `request_id`, oldest first, at most
// `limit`. Lines are checked for the id as text before being parsed.
Result<std::vector<nlohmann::json>> ScanRequestRecords(int fd, std::string_view request_id,
                                                       uint64_t before, size_t limit);

}  // namespace airlock::audit_internal
