#include "kernel/audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <utility>

#include <spdlog/spdlog.h>

#include "kernel/audit/audit_chain.h"
#include "kernel/audit/fault_injection.h"
#include "kernel/audit/request_record_index.h"
#include "kernel/common/one_shot_signal.h"

namespace airlock {
namespace {

using audit_internal::kGenesisHash;

std::string ErrnoText(int err) {
  return std::strerror(err);
}

Status Unavailable(std::string_view what, int err) {
  return Status::Unavailable("audit log unavailable: " + std::string(what) + ": " + ErrnoText(err));
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t wrote = ::write(fd, data.data(), data.size());
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return Unavailable("write failed", errno);
    }
    data.remove_prefix(static_cast<size_t>(wrote));
  }
  return Status::Ok();
}

Status SyncData(int fd, std::string_view what) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return Unavailable(what, errno);
  }
  return Status::Ok();
}

// Makes a newly created directory entry durable.
void SyncParentDirectory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  const int dir_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return;
  ::fsync(dir_fd);
  ::close(dir_fd);
}

// Opens `path` with O_CREAT; `*created` says whether it did not exist before.
int OpenCreating(const std::string& path, int flags, bool* created) {
  int fd = ::open(path.c_str(), flags | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  *created = fd >= 0;
  if (fd < 0 && errno == EEXIST) fd = ::open(path.c_str(), flags | O_CLOEXEC);
  return fd;
}

// The JSON-lines file backend (see audit_log.h).
class FileAuditLog final : public AuditLog {
 public:
  FileAuditLog(std::string path, AuditOptions options);
  ~FileAuditLog() override;

  Status Recover();

  Status Commit(std::vector<nlohmann::json>& events) override;
  size_t indexed_requests() const override { return index_.requests(); }
  size_t queued_records() const override {
    std::lock_guard lock(mu_);
    return queued_records_;
  }
  Result<std::vector<nlohmann::json>> ForRequest(std::string_view request_id,
                                                 size_t limit) const override;
  Result<std::vector<AuditRecordAt>> ReadBackward(std::optional<uint64_t> position,
                                                  size_t max_records) const override;
  Result<std::vector<AuditRecordAt>> ReadForward(uint64_t position,
                                                 size_t max_records) const override;
  AuditHead head() const override;
  Status health() const override;
  uint64_t flush_count() const override { return flush_count_.load(std::memory_order_relaxed); }
  const std::string& path() const override { return path_; }

 private:
  struct Pending;
  struct Writer;
  // Leader only: serializes, writes and syncs `batch`, setting each status.
  // Returns the I/O failure that must close the log, or Ok.
  Status Flush(const std::vector<Pending*>& batch);
  Status WriteAnchor();
  // Ok when `position` is a place in the log up to `end` (ReadBackward,
  // ReadForward); InvalidArgument otherwise.
  Status CheckPlace(uint64_t position, uint64_t end) const;
  // The most one read of the readers takes.
  uint64_t ReadSpan() const;
  // Bytes [from, to) of the file.
  Result<std::string> ReadBytes(uint64_t from, uint64_t to) const;
  // The record on chunk[line_start, newline), `chunk` read at `chunk_at`.
  Result<AuditRecordAt> RecordIn(const std::string& chunk, uint64_t chunk_at, size_t line_start,
                                 size_t newline) const;
  // Adds `record`, at `location`, to the index when it names a request.
  void IndexRecord(const nlohmann::json& record, audit_internal::RecordLocation location);

  const std::string path_;
  const AuditOptions options_;
  std::string anchor_path_;
  int fd_ = -1;         // O_APPEND writer
  int read_fd_ = -1;    // for ForRequest
  int anchor_fd_ = -1;  // -1 when no anchor is kept

  mutable std::mutex mu_;
  std::deque<Writer*> writers_;  // guarded by mu_; the front one leads
  size_t queued_records_ = 0;    // guarded by mu_: records of writers_
  Status health_;                // guarded by mu_

  // Owned by the current leader (handed over through mu_ / writers_).
  uint64_t next_seq_ = 1;
  std::string last_hash_;
  uint64_t file_end_ = 0;
  uint64_t groups_since_anchor_sync_ = 0;
  std::string write_buffer_;

  audit_internal::RequestRecordIndex index_;
  // The end of the last durable record: what readers may read.
  std::atomic<uint64_t> durable_end_{0};

  mutable std::mutex head_mu_;
  AuditHead head_;  // guarded by head_mu_: the durable head

  std::atomic<uint64_t> flush_count_{0};
};

}  // namespace

// One record of a Writer; the event is the appender's (Commit's argument),
// to which Flush adds the keys it writes.
struct FileAuditLog::Pending {
  nlohmann::json* event = nullptr;
  Status status;
};

// One Append/AppendAll call waiting in the queue, living on the caller's
// stack until its turn comes: either a leader wrote its records (kDone) or
// it reached the front of the queue and leads the next group (kLead).
struct FileAuditLog::Writer {
  enum class Turn { kWaiting, kDone, kLead };
  std::vector<Pending> slots;
  OneShotSignal<Turn> turn;

  Status Result() const {
    for (const Pending& slot : slots) {
      if (!slot.status.ok()) return slot.status;
    }
    return Status::Ok();
  }
};

FileAuditLog::FileAuditLog(std::string path, AuditOptions options)
    : path_(std::move(path)),
      options_(std::move(options)),
      last_hash_(kGenesisHash),
      index_(options_.max_indexed_requests) {
  anchor_path_ =
      options_.anchor_path.empty() ? audit_internal::AnchorPathFor(path_) : options_.anchor_path;
}

FileAuditLog::~FileAuditLog() {
  if (anchor_fd_ >= 0) {
    bool healthy;
    {
      std::lock_guard lock(mu_);
      healthy = health_.ok();
    }
    if (healthy) ::fdatasync(anchor_fd_);
    ::close(anchor_fd_);
  }
  if (read_fd_ >= 0) ::close(read_fd_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path, AuditOptions options) {
  if (path.empty()) return Status::InvalidArgument("audit log path is empty");
  if (options.max_record_bytes == 0 ||
      options.max_record_bytes > audit_internal::kMaxLineBytes / 2) {
    return Status::InvalidArgument("audit max_record_bytes out of range");
  }
  if (options.anchor_sync_every == 0) options.anchor_sync_every = 1;
  std::unique_ptr<FileAuditLog> log(new FileAuditLog(path, std::move(options)));
  AIRLOCK_RETURN_IF_ERROR(log->Recover());
  return std::unique_ptr<AuditLog>(std::move(log));
}

Status FileAuditLog::Recover() {
  bool created = false;
  fd_ = OpenCreating(path_, O_WRONLY | O_APPEND, &created);
  if (fd_ < 0) {
    return Status::Unavailable("cannot open audit log " + path_ + ": " + ErrnoText(errno));
  }
  if (created) SyncParentDirectory(path_);
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    return Status::Unavailable("cannot stat audit log " + path_ + ": " + ErrnoText(errno));
  }
  const bool regular = S_ISREG(info.st_mode);
  read_fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (read_fd_ < 0) {
    return Status::Unavailable("cannot read audit log " + path_ + ": " + ErrnoText(errno));
  }

  if (options_.skip_recovery) {
    if (regular && info.st_size > 0) {
      return Status::FailedPrecondition("audit log " + path_ +
                                        " already holds records; refusing to skip recovery");
    }
  } else {
    if (!regular) return Status::InvalidArgument("audit log " + path_ + " is not a regular file");
    std::optional<audit_internal::Anchor> anchor;
    if (options_.write_anchor) {
      AIRLOCK_ASSIGN_OR_RETURN(anchor, audit_internal::ReadAnchor(anchor_path_));
    }
    std::string anchored_hash;  // hash of the record at anchor->seq, as found in the file
    audit_internal::PointChecker points(options_.trusted_points);
    auto scan = audit_internal::ScanAuditFile(read_fd_, [&](const audit_internal::ScannedRecord&
                                                                record) {
      IndexRecord(*record.record, {record.offset, static_cast<uint32_t>(record.text.size() + 1)});
      if (anchor && record.seq == anchor->seq) anchored_hash = std::string(record.hash);
      points.OnRecord(record.seq, record.hash);
    });
    if (!scan.problem.empty()) {
      if (!scan.torn_tail || !options_.truncate_torn_tail) {
        return Status::FailedPrecondition("audit log " + path_ + " is damaged at line " +
                                          std::to_string(scan.bad_line) + ": " + scan.problem);
      }
      spdlog::warn("audit log {}: cutting off an unacknowledged torn line {} ({} bytes)", path_,
                   scan.bad_line, static_cast<uint64_t>(info.st_size) - scan.good_end_offset);
      if (::ftruncate(fd_, static_cast<off_t>(scan.good_end_offset)) != 0) {
        return Status::Unavailable("cannot truncate torn tail of " + path_ + ": " +
                                   ErrnoText(errno));
      }
      AIRLOCK_RETURN_IF_ERROR(SyncData(fd_, "fdatasync failed"));
    }
    if (!anchor && options_.write_anchor && scan.last_seq > 0 && !options_.accept_missing_anchor) {
      return Status::FailedPrecondition(
          "audit log " + path_ + " holds " + std::to_string(scan.last_seq) +
          " records but its anchor " + anchor_path_ +
          " is missing: records removed from the end could not be detected. Restore the anchor, "
          "or accept the log as it is by starting once with --accept-unverified-audit-history");
    }
    if (auto contradiction = points.Finish(scan.last_seq)) {
      return Status::FailedPrecondition("audit log " + path_ +
                                        " contradicts its signed checkpoints: " + *contradiction);
    }
    if (anchor && anchor->seq > scan.last_seq) {
      return Status::FailedPrecondition(
          "audit log " + path_ + " ends at seq " + std::to_string(scan.last_seq) +
          " but its anchor records seq " + std::to_string(anchor->seq) +
          ": records were removed from the end (line " + std::to_string(scan.records + 1) + ")");
    }
    if (anchor && anchor->seq > 0 && anchored_hash != anchor->hash) {
      return Status::FailedPrecondition(
          "audit log " + path_ + ": record seq " + std::to_string(anchor->seq) +
          " does not match the hash in its anchor (line " + std::to_string(anchor->seq) + ")");
    }
    next_seq_ = scan.last_seq + 1;
    last_hash_ = std::move(scan.last_hash);
    file_end_ = scan.good_end_offset;
    durable_end_.store(file_end_, std::memory_order_release);
  }
  {
    std::lock_guard lock(head_mu_);
    head_ = AuditHead{next_seq_ - 1, last_hash_};
  }

  if (options_.write_anchor) {
    bool anchor_created = false;
    anchor_fd_ = OpenCreating(anchor_path_, O_RDWR, &anchor_created);
    if (anchor_fd_ < 0) {
      return Status::Unavailable("cannot open audit anchor " + anchor_path_ + ": " +
                                 ErrnoText(errno));
    }
    AIRLOCK_RETURN_IF_ERROR(WriteAnchor());
    AIRLOCK_RETURN_IF_ERROR(SyncData(anchor_fd_, "anchor fdatasync failed"));
    if (anchor_created) SyncParentDirectory(anchor_path_);
  }
  return Status::Ok();
}

Status FileAuditLog::WriteAnchor() {
  const std::string text =
      audit_internal::FormatAnchor(audit_internal::Anchor{next_seq_ - 1, last_hash_});
  const ssize_t wrote = ::pwrite(anchor_fd_, text.data(), text.size(), 0);
  if (wrote < 0) return Unavailable("anchor write failed", errno);
  if (static_cast<size_t>(wrote) != text.size()) {
    return Status::Unavailable("audit log unavailable: anchor write was cut short");
  }
  return Status::Ok();
}

Status FileAuditLog::Commit(std::vector<nlohmann::json>& events) {
  using Turn = Writer::Turn;
  if (events.empty()) return Status::Ok();
  for (const auto& event : events) AIRLOCK_RETURN_IF_ERROR(audit_internal::ValidateEvent(event));
  Writer self;
  self.slots.resize(events.size());
  for (size_t i = 0; i < events.size(); ++i) self.slots[i].event = &events[i];
  std::unique_lock lock(mu_);
  if (!health_.ok()) return health_;
  if (queued_records_ + self.slots.size() > options_.max_pending) {
    return Status::ResourceExhausted("audit log queue is full");
  }
  // The writer's records stay together in the queue, so one leader takes
  // them all into the same group: consecutive and durable at one instant.
  writers_.push_back(&self);
  queued_records_ += self.slots.size();
  if (writers_.front() != &self) {
    lock.unlock();
    if (self.turn.Wait() == Turn::kDone) return self.Result();
    lock.lock();  // kLead: this writer is now at the front
  }
  // Leader: flush every writer queued so far, this one first.
  Writer* const last = writers_.back();
  std::vector<Pending*> batch;
  for (Writer* writer : writers_) {
    for (Pending& slot : writer->slots) batch.push_back(&slot);
    if (writer == last) break;
  }
  const Status health = health_;
  lock.unlock();
  Status io = health;
  if (health.ok()) {
    io = Flush(batch);
  } else {
    for (Pending* pending : batch) pending->status = health;
  }
  lock.lock();
  if (!io.ok() && health_.ok()) health_ = io;
  queued_records_ -= batch.size();
  std::vector<Writer*> finished;
  for (Writer* writer = nullptr; writer != last;) {
    writer = writers_.front();
    writers_.pop_front();
    if (writer != &self) finished.push_back(writer);
  }
  // Whoever queued during the flush leads the next group.
  Writer* const next = writers_.empty() ? nullptr : writers_.front();
  lock.unlock();
  if (next != nullptr) next->turn.Post(Turn::kLead);
  for (Writer* writer : finished) writer->turn.Post(Turn::kDone);
  return self.Result();
}

Status FileAuditLog::Flush(const std::vector<Pending*>& batch) {
  struct Written {
    Pending* pending;
    uint64_t offset;
    uint32_t length;
  };
  std::vector<Written> written;
  written.reserve(batch.size());
  write_buffer_.clear();
  const std::string ts = audit_internal::FormatTimestamp(std::chrono::system_clock::now());
  uint64_t seq = next_seq_;
  std::string prev = last_hash_;

  for (Pending* pending : batch) {
    nlohmann::json& record = *pending->event;
    record["seq"] = seq;
    record["ts"] = ts;
    record["prev"] = prev;
    const std::string canonical = audit_internal::CanonicalDump(record);
    if (canonical.size() > options_.max_record_bytes) {
      pending->status = Status::InvalidArgument(
          "audit event too large: " + std::to_string(canonical.size()) + " bytes (limit " +
          std::to_string(options_.max_record_bytes) + ")");
      continue;
    }
    std::string hash = audit_internal::ChainHash(prev, canonical);
    const size_t start = write_buffer_.size();
    audit_internal::AppendRecordLine(canonical, hash, &write_buffer_);
    written.push_back(
        Written{pending, file_end_ + start, static_cast<uint32_t>(write_buffer_.size() - start)});
    prev = std::move(hash);
    ++seq;
  }
  if (written.empty()) return Status::Ok();

  Status io = WriteAll(fd_, write_buffer_);
  if (io.ok()) io = SyncData(fd_, "fdatasync failed");
  if (io.ok()) {
    // Only now is the group durable: advance the chain, then the anchor.
    next_seq_ = seq;
    last_hash_ = std::move(prev);
    file_end_ += write_buffer_.size();
    if (anchor_fd_ >= 0) {
      io = WriteAnchor();
      if (io.ok() && ++groups_since_anchor_sync_ >= options_.anchor_sync_every) {
        groups_since_anchor_sync_ = 0;
        io = SyncData(anchor_fd_, "anchor fdatasync failed");
      }
    }
  }
  if (!io.ok()) {
    spdlog::error("audit log {} failed closed: {}", path_, io.message());
    for (const Written& w : written) w.pending->status = io;
    return io;
  }

  for (const Written& w : written) IndexRecord(*w.pending->event, {w.offset, w.length});
  durable_end_.store(file_end_, std::memory_order_release);
  {
    std::lock_guard lock(head_mu_);
    head_ = AuditHead{next_seq_ - 1, last_hash_};
  }
  flush_count_.fetch_add(1, std::memory_order_relaxed);
  NotifyDurable(next_seq_ - 1);

  for (const Written& w : written) audit_internal::AfterDurableRecord(*w.pending->event);
  return Status::Ok();
}

AuditHead FileAuditLog::head() const {
  std::lock_guard lock(head_mu_);
  return head_;
}

Status FileAuditLog::health() const {
  std::lock_guard lock(mu_);
  return health_;
}

void FileAuditLog::IndexRecord(const nlohmann::json& record,
                               audit_internal::RecordLocation location) {
  auto request_id = record.find("request_id");
  if (request_id == record.end() || !request_id->is_string()) return;
  auto event = record.find("event");
  const bool starts = event != record.end() && event->is_string() &&
                      event->get_ref<const std::string&>() == audit_internal::kStartEvent;
  index_.Add(request_id->get_ref<const std::string&>(), location, starts);
}

Result<std::vector<nlohmann::json>> FileAuditLog::ForRequest(std::string_view request_id,
                                                             size_t limit) const {
  const audit_internal::RequestRecordIndex::Found found = index_.Lookup(request_id);
  // Records of a request audited long ago are no longer indexed: they are
  // read from the part of the file before what the index holds.
  std::vector<nlohmann::json> records;
  if (found.scan_before > 0) {
    AIRLOCK_ASSIGN_OR_RETURN(records, audit_internal::ScanRequestRecords(read_fd_, request_id,
                                                                         found.scan_before, limit));
  }
  std::string line;
  for (const audit_internal::RecordLocation& location : found.indexed) {
    if (records.size() >= limit) break;
    line.resize(location.length);
    AIRLOCK_ASSIGN_OR_RETURN(
        const size_t got,
        audit_internal::ReadAuditBytes(read_fd_, line.data(), line.size(), location.offset));
    if (got < line.size()) {
      return Status::Unavailable("cannot read audit log " + path_ + ": short read");
    }
    auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) {
      return Status::Internal("audit record at offset " + std::to_string(location.offset) + " of " +
                              path_ + " is unreadable");
    }
    records.push_back(std::move(record));
  }
  return records;
}

Status FileAuditLog::CheckPlace(uint64_t position, uint64_t end) const {
  // A place handed out is the start of a record (or the start or the end of
  // the log): the byte before it ends the record preceding it.
  const Status not_a_place = Status::InvalidArgument("not a place in the audit log");
  if (position > end) return not_a_place;
  if (position == 0) return Status::Ok();
  char last = 0;
  AIRLOCK_ASSIGN_OR_RETURN(const size_t read,
                           audit_internal::ReadAuditBytes(read_fd_, &last, 1, position - 1));
  return read == 1 && last == '\n' ? Status::Ok() : not_a_place;
}

uint64_t FileAuditLog::ReadSpan() const {
  // One read holds at least one whole record: none is longer than this.
  return std::max<uint64_t>(1u << 20, options_.max_record_bytes + 256);
}

Result<std::string> FileAuditLog::ReadBytes(uint64_t from, uint64_t to) const {
  std::string chunk(to - from, '\0');
  AIRLOCK_ASSIGN_OR_RETURN(
      const size_t got, audit_internal::ReadAuditBytes(read_fd_, chunk.data(), chunk.size(), from));
  if (got < chunk.size()) {
    return Status::Unavailable("cannot read audit log " + path_ + ": short read");
  }
  return chunk;
}

Result<AuditRecordAt> FileAuditLog::RecordIn(const std::string& chunk, uint64_t chunk_at,
                                             size_t line_start, size_t newline) const {
  auto record = nlohmann::json::parse(chunk.begin() + static_cast<std::ptrdiff_t>(line_start),
                                      chunk.begin() + static_cast<std::ptrdiff_t>(newline), nullptr,
                                      /*allow_exceptions=*/false);
  if (record.is_discarded()) {
    return Status::Internal("audit record at offset " + std::to_string(chunk_at + line_start) +
                            " of " + path_ + " is unreadable");
  }
  return AuditRecordAt{std::move(record), chunk_at + line_start, chunk_at + newline + 1};
}

Result<std::vector<AuditRecordAt>> FileAuditLog::ReadBackward(std::optional<uint64_t> position,
                                                              size_t max_records) const {
  const uint64_t end = durable_end_.load(std::memory_order_acquire);
  const uint64_t before = position.value_or(end);
  std::vector<AuditRecordAt> records;
  if (before == 0 || max_records == 0) return records;
  AIRLOCK_RETURN_IF_ERROR(CheckPlace(before, end));
  const uint64_t start = before > ReadSpan() ? before - ReadSpan() : 0;
  AIRLOCK_ASSIGN_OR_RETURN(const std::string chunk, ReadBytes(start, before));
  // Lines from the last one back; a partial first line (cut by the read)
  // is left for the next call.
  size_t line_end = chunk.size() - 1;  // its '\n'
  while (records.size() < max_records) {
    const size_t newline = line_end == 0 ? std::string::npos : chunk.rfind('\n', line_end - 1);
    if (newline == std::string::npos && start > 0) break;
    const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    AIRLOCK_ASSIGN_OR_RETURN(AuditRecordAt at, RecordIn(chunk, start, line_start, line_end));
    records.push_back(std::move(at));
    if (line_start == 0) break;
    line_end = line_start - 1;
  }
  if (records.empty()) {
    return Status::Internal("audit log " + path_ + " holds a record longer than its limit");
  }
  return records;
}

Result<std::vector<AuditRecordAt>> FileAuditLog::ReadForward(uint64_t position,
                                                             size_t max_records) const {
  const uint64_t end = durable_end_.load(std::memory_order_acquire);
  std::vector<AuditRecordAt> records;
  AIRLOCK_RETURN_IF_ERROR(CheckPlace(position, end));
  if (position == end || max_records == 0) return records;
  AIRLOCK_ASSIGN_OR_RETURN(const std::string chunk,
                           ReadBytes(position, position + std::min(ReadSpan(), end - position)));
  // Whole lines only; a line cut by the read is left for the next call.
  size_t line_start = 0;
  while (records.size() < max_records) {
    const size_t newline = chunk.find('\n', line_start);
    if (newline == std::string::npos) break;
    AIRLOCK_ASSIGN_OR_RETURN(AuditRecordAt at, RecordIn(chunk, position, line_start, newline));
    records.push_back(std::move(at));
    line_start = newline + 1;
  }
  if (records.empty()) {
    return Status::Internal("audit log " + path_ + " holds a record longer than its limit");
  }
  return records;
}

}  // namespace airlock
