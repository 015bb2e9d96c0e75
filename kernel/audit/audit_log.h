// The audit log: an append-only hash chain of JSON records (format in
// audit_chain.h) with group commit and fail-closed writes. AuditLog is the
// interface the kernel appends through; two backends implement it: the
// JSON-lines file below (AuditLog::Open, one kernel) and one chain in
// PostgreSQL shared by every replica (postgres_audit_log.h).
//
// The file backend:
//
// Durability: Append returns only after the record is on disk (fdatasync).
// Concurrent Appends are committed in groups: callers queue in arrival order;
// the caller at the front is the leader, writes every queued record with one
// write() and one fdatasync(), then wakes exactly the callers its flush
// covered and hands leadership to the next caller in the queue. Every caller
// waits on its own condition, so a flush wakes only those it finished.
// Sequence numbers follow file order.
//
// Fail closed: once a write or sync fails, that Append and every later one
// returns Unavailable("audit log unavailable: <reason>"); health() says why.
// Nothing is retried: the file may end in a torn line, which the next Open
// truncates (it was never acknowledged).
//
// Truncation anchor: after every group flush the seq and hash of the last
// record are rewritten in place in "<path>.head" (fixed-width, one pwrite).
// The anchor is written only after the log itself is synced, so it never
// runs ahead of durable records; it is itself fdatasync'ed every
// `anchor_sync_every` groups and on close. After a crash it may therefore lag
// by a few groups (truncation of those is not detectable), but a file that is
// shorter than its anchor is reported by Open and VerifyAuditFile. A
// non-empty log whose anchor is missing is refused by Open unless the caller
// accepts it (accept_missing_anchor): losing the anchor is how a removal of
// the final records would hide.
//
// Keyed integrity lives above this class: signed checkpoints
// (checkpointer.h) over head(); Open checks the log against the (seq, hash)
// points of checkpoints whose signatures the caller verified
// (AuditOptions::trusted_points).
//
// Thread-safety: every method may be called from any thread concurrently.
// The AuditLog must outlive all calls on it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_head.h"
#include "kernel/common/hook_slot.h"

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
  // Open a non-empty log whose anchor file is missing (the operator's
  // explicit choice: the tail it guarded can no longer be checked).
  bool accept_missing_anchor = false;
  // (seq, hash) points the log must contain: the heads named by signed
  // checkpoints, already verified by the caller. Open fails when a record's
  // hash differs from a point's or the log ends before a point's seq.
  std::vector<AuditHead> trusted_points;
  // fdatasync the anchor every this many group flushes (and on close).
  uint32_t anchor_sync_every = 64;
  // On Open, cut off a final line that has no newline (a write cut short by
  // a crash or a failed write: never acknowledged). When false, Open fails.
  bool truncate_torn_tail = true;
  // Largest serialized record accepted; larger events are refused.
  size_t max_record_bytes = 256u << 10;
  // Appends waiting for a flush beyond this are refused (ResourceExhausted).
  size_t max_pending = 1u << 16;
  // Requests whose records' places in the file are kept in memory (those
  // audited most recently; request_record_index.h). ForRequest reads the
  // records of the others from the file itself.
  size_t max_indexed_requests = 16384;
};

// A record read back from the log, and where reading on continues: with
// the record before it (`before`, reading backwards) or after it (`after`,
// reading forwards).
struct AuditRecordAt {
  nlohmann::json record;
  uint64_t before = 0;
  uint64_t after = 0;
};

// Told of every append after its commit (on the appending thread): what was
// appended (a record may carry the keys the log added to it), whether it
// became durable and how long the commit took.
class AuditAppendObserver {
 public:
  virtual ~AuditAppendObserver() = default;
  virtual void OnAppended(const std::vector<nlohmann::json>& events, const Status& status,
                          std::chrono::steady_clock::duration took) = 0;
};

// Completes every record before it is committed, on the appending thread:
// what every record must carry that its writer may not know (the tenant it
// belongs to). It must not append to the log itself.
class AuditRecordTagger {
 public:
  virtual ~AuditRecordTagger() = default;
  virtual void Tag(nlohmann::json& event) const = 0;
};

class AuditLog {
 public:
  // Opens or creates the file `path` (mode 0600). Unless
  // options.skip_recovery, reads the whole file, verifies the chain,
  // recovers the last seq/hash and builds the request index. Fails
  // (FailedPrecondition, naming the line) if the chain is broken or the file
  // is shorter than its anchor.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path, AuditOptions options = {});

  virtual ~AuditLog() = default;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends `event`, a JSON object with a non-empty string "event" and
  // optionally "request_id" (string), "principal", ... It must not carry the
  // keys the log adds ("seq", "ts", "prev", "hash"). Returns once the record
  // is durable. Errors: InvalidArgument (malformed event, too large),
  // ResourceExhausted (queue full), Unavailable (log failed, now or before).
  Status Append(nlohmann::json event) {
    std::vector<nlohmann::json> one;
    one.push_back(std::move(event));
    return AppendAll(std::move(one));
  }

  // Appends `events` as consecutive records in one group (one write, one
  // commit) and returns once all are durable: for a caller that records
  // several steps of one operation before answering. Every event is
  // validated first; if one is malformed nothing is appended (a record over
  // max_record_bytes is refused alone, as Append). Returns the first failure.
  Status AppendAll(std::vector<nlohmann::json> events) {
    tagger_.Call([&](const AuditRecordTagger& tagger) {
      for (nlohmann::json& event : events) {
        if (event.is_object()) tagger.Tag(event);
      }
    });
    if (!observer_.has_callee()) return Commit(events);
    const auto started = std::chrono::steady_clock::now();
    Status status = Commit(events);
    const auto took = std::chrono::steady_clock::now() - started;
    observer_.Call(
        [&](AuditAppendObserver& observer) { observer.OnAppended(events, status, took); });
    return status;
  }

  // Durable records whose "request_id" equals `request_id`, oldest first, at
  // most `limit` of them.
  virtual Result<std::vector<nlohmann::json>> ForRequest(std::string_view request_id,
                                                         size_t limit) const = 0;

  // Durable records read from the end of the log toward its start: those
  // before `position` (a place an earlier call handed out; nullopt: the
  // end), newest first, at most `max_records`; none once the start is
  // reached. A position is the backend's own (a byte offset in the file, a
  // sequence number in PostgreSQL): InvalidArgument when it is not one.
  virtual Result<std::vector<AuditRecordAt>> ReadBackward(std::optional<uint64_t> position,
                                                          size_t max_records) const = 0;

  // Durable records from `position` on, oldest first, at most `max_records`
  // (none when there is nothing newer yet), each with where reading on
  // continues after it. 0 is the start of the log; other positions are ones
  // an earlier call handed out (the file: a byte offset; PostgreSQL: the
  // last sequence number read). InvalidArgument for anything else.
  virtual Result<std::vector<AuditRecordAt>> ReadForward(uint64_t position,
                                                         size_t max_records) const = 0;

  // Seq and chain hash of the last durable record this log knows of (0 for
  // an empty log). A shared chain may have grown since through other
  // replicas; the head is still a true point of it.
  virtual AuditHead head() const = 0;
  uint64_t last_sequence() const { return head().seq; }
  // Ok while appends are accepted; why not otherwise.
  virtual Status health() const = 0;
  // Group commits done since Open.
  virtual uint64_t flush_count() const = 0;
  // The log as messages name it: its file, or "postgres user@host:port/db".
  virtual const std::string& path() const = 0;
  // Requests whose records' places the log keeps in memory (bounded by
  // AuditOptions::max_indexed_requests); 0 for a log that keeps none.
  virtual size_t indexed_requests() const { return 0; }
  // Records waiting to be committed now (appends queued behind the one
  // being written); 0 for a log that does not queue.
  virtual size_t queued_records() const { return 0; }

  // Told after every commit (on the committing thread, no lock held). Null
  // removes it. Each setter returns once no call to the one it replaced is
  // running, so that one may be destroyed then; none may call a setter from
  // inside its own call.
  void set_durable_listener(AuditDurableListener* listener) { listener_.Set(listener); }
  // Completes every record appended from now on; null removes it.
  void set_record_tagger(const AuditRecordTagger* tagger) { tagger_.Set(tagger); }
  // The same for appends (metrics); null removes it.
  void set_append_observer(AuditAppendObserver* observer) { observer_.Set(observer); }

 protected:
  AuditLog() = default;
  // The backend's AppendAll. `events` stay the caller's (the observer sees
  // them after the commit, with no copy made): a backend may add the keys it
  // writes ("seq", "ts", "prev") and changes nothing else.
  virtual Status Commit(std::vector<nlohmann::json>& events) = 0;
  void NotifyDurable(uint64_t seq) {
    listener_.Call([seq](AuditDurableListener& listener) { listener.OnDurable(seq); });
  }

 private:
  HookSlot<AuditDurableListener> listener_;
  HookSlot<AuditAppendObserver> observer_;
  HookSlot<const AuditRecordTagger> tagger_;
};

}  // namespace airlock
