// The audit log: an append-only, hash-chained JSON-lines file (one record a
// line; format in audit_chain.h) with pipelined group commit and fail-closed
// writes.
//
// Durability: Append returns only after the record is on disk (fdatasync).
// Concurrent Appends are committed in groups: callers queue in arrival order;
// the caller at the front is the leader. It takes a free sync descriptor
// (waiting for one while it keeps its turn, so more callers join the group),
// assigns seq/prev/hash to every queued record, writes them with one write(),
// hands leadership to the next caller in the queue, and only then runs the
// group's fdatasync. Writes are therefore serial and in chain order, while
// the syncs of up to `sync_fds` consecutive groups overlap. Completion is in
// order: a group's callers are answered only once every earlier group is
// durable. Every caller waits on its own condition, so a completion wakes
// only those it finished. Sequence numbers follow file order.
//
// Fail closed: once a write or sync fails, that Append and every later one
// returns Unavailable("audit log unavailable: <reason>"); health() says why.
// A failed sync also fails every later group already written behind it (with
// the same status), as none of them is known to be durable on its own terms.
// Nothing is retried: the file may end in a torn line or in unacknowledged
// records; the next Open truncates a torn line.
//
// Durable state (last_sequence(), ForRequest, the anchor, flush_count) only
// ever advances in group order, after the group's sync.
//
// Truncation anchor: after every group is durable the seq and hash of its
// last record are rewritten in place in "<path>.head" (fixed-width, one
// pwrite). The anchor is written only after the log itself is synced, so it
// never runs ahead of durable records; it is itself fdatasync'ed every
// `anchor_sync_every` groups and on close. After a crash it may therefore lag
// by a few groups (truncation of those is not detectable), but a file that is
// shorter than its anchor is reported by Open and VerifyAuditFile.
//
// Thread-safety: every method may be called from any thread concurrently.
// The AuditLog must outlive all calls on it; its destructor waits for
// in-flight groups to complete and syncs the anchor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock {

struct AuditOptions {
  // Do not read or verify the existing file; start a new chain at seq 1.
  // Allowed only when the target is empty or not a regular file (a device
  // such as /dev/full in tests); Open refuses it on a non-empty log.
  bool skip_recovery = false;
  // Maintain the "<path>.head" truncation anchor (see the file comment).
  bool write_anchor = true;
  // Where the anchor lives; empty means "<path>.head".
  std::string anchor_path;
  // fdatasync the anchor every this many group flushes (and on close).
  uint32_t anchor_sync_every = 64;
  // On Open, cut off a final line that has no newline (a write cut short by
  // a crash or a failed write: never acknowledged). When false, Open fails.
  bool truncate_torn_tail = true;
  // Largest serialized record accepted; larger events are refused.
  size_t max_record_bytes = 256u << 10;
  // Appends waiting for a flush beyond this are refused (ResourceExhausted).
  size_t max_pending = 1u << 16;
  // Open file descriptions of the log kept for syncing groups: at most this
  // many group syncs are in flight at once (1..64; 1 = no overlap).
  size_t sync_fds = 4;
  // Test seam: makes the data of the log durable through `fd` (one of the
  // sync descriptors), returning 0 or an errno value. Empty = fdatasync.
  // Called once per group, concurrently from several threads.
  std::function<int(int fd)> sync_group;
};

class AuditLog {
 public:
  // Opens or creates `path` (mode 0600). Unless options.skip_recovery, reads
  // the whole file, verifies the chain, recovers the last seq/hash and builds
  // the request index. Fails (FailedPrecondition, naming the line) if the
  // chain is broken or the file is shorter than its anchor.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path, AuditOptions options = {});

  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends `event`, a JSON object with a non-empty string "event" and
  // optionally "request_id" (string), "principal", ... It must not carry the
  // keys the log adds ("seq", "ts", "prev", "hash"). Returns once the record
  // is durable. Errors: InvalidArgument (malformed event, too large),
  // ResourceExhausted (queue full), Unavailable (log failed, now or before).
  Status Append(nlohmann::json event);

  // Appends `events` as consecutive records in one group (one write, one
  // fdatasync) and returns once all are durable: for a caller that records
  // several steps of one operation before answering. Every event is
  // validated first; if one is malformed nothing is appended (a record over
  // max_record_bytes is refused alone, as Append). Returns the first failure.
  Status AppendAll(std::vector<nlohmann::json> events);

  // Durable records whose "request_id" equals `request_id`, oldest first, at
  // most `limit` of them. Served from an in-memory index of file offsets.
  Result<std::vector<nlohmann::json>> ForRequest(std::string_view request_id, size_t limit) const;

  // Seq of the last durable record (0 for an empty log).
  uint64_t last_sequence() const { return last_seq_.load(std::memory_order_acquire); }
  // Ok while healthy; the failure that closed the log otherwise.
  Status health() const;
  // Number of groups made durable (write + fdatasync) since Open.
  uint64_t flush_count() const { return flush_count_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }

 private:
  struct Pending;
  struct Writer;
  struct Group;
  struct Location {
    uint64_t offset;
    uint32_t length;
  };

  AuditLog(std::string path, AuditOptions options);
  Status Recover();
  // Leader only, under its turn: assigns seq/prev/hash to `batch`, writes it
  // with one write() and, on success, advances the chain state (next_seq_,
  // last_hash_, file_end_). Fills group->written. Returns the write failure
  // that must close the log, or Ok.
  Status WriteGroup(const std::vector<Pending*>& batch, Group* group);
  Status SyncGroup(int fd) const;
  // Completes, in order, every finished group at the front of groups_.
  // Called with `lock` held and completing_ false; returns with it held.
  // Sets *self_answered if it answered `self`'s group.
  void DrainCompleted(std::unique_lock<std::mutex>& lock, const Writer* self, bool* self_answered);
  // Drainer only: makes `group` visible as durable (anchor, index, counters)
  // or fails it; sets its records' statuses. Returns the group's outcome.
  Status CompleteGroup(Group& group);
  Status WriteAnchor(uint64_t seq, const std::string& hash);

  const std::string path_;
  const AuditOptions options_;
  std::string anchor_path_;
  int fd_ = -1;         // O_APPEND writer
  int read_fd_ = -1;    // for ForRequest
  int anchor_fd_ = -1;  // -1 when no anchor is kept
  // One open file description per in-flight sync. Linux reports a writeback
  // error to each open file description once (errseq): if two syncs shared a
  // description, the second could return success for pages whose writeback
  // failed after the first had consumed the error.
  std::vector<int> sync_fds_;

  mutable std::mutex mu_;
  std::deque<Writer*> writers_;                // guarded by mu_; the front one leads
  size_t queued_records_ = 0;                  // guarded by mu_: records of writers_
  Status health_;                              // guarded by mu_
  std::vector<int> free_sync_fds_;             // guarded by mu_
  std::condition_variable sync_fd_cv_;         // a sync fd came free or health_ failed
  std::deque<std::unique_ptr<Group>> groups_;  // guarded by mu_: written, not answered
  bool completing_ = false;                    // guarded by mu_: a thread runs DrainCompleted
  std::condition_variable idle_cv_;            // groups_ drained (for the destructor)

  // Chain state, owned by the current leader (handed over through mu_ /
  // writers_); advances at write time.
  uint64_t next_seq_ = 1;
  std::string last_hash_;
  uint64_t file_end_ = 0;
  std::string write_buffer_;

  // Owned by the thread that runs DrainCompleted (completing_).
  uint64_t groups_since_anchor_sync_ = 0;
  Status completion_failure_;  // first failure in group order; fails every later group

  mutable std::shared_mutex index_mu_;
  std::unordered_map<std::string, std::vector<Location>> index_;  // guarded by index_mu_

  std::atomic<uint64_t> last_seq_{0};
  std::atomic<uint64_t> flush_count_{0};
};

}  // namespace airlock
