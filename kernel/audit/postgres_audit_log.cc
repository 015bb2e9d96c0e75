#include "kernel/audit/postgres_audit_log.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "kernel/audit/audit_chain.h"
#include "kernel/audit/fault_injection.h"
#include "kernel/common/one_shot_signal.h"
#include "kernel/state/postgres_target.h"

namespace airlock {
namespace {

using audit_internal::kGenesisHash;
using Connection = std::unique_ptr<pqxx::connection>;

// Rows read per query while checking or exporting the chain.
constexpr int64_t kScanBatch = 5000;
// Attempts at committing one group before the log fails closed.
constexpr int kMaxAttempts = 3;
constexpr std::chrono::milliseconds kProbeInterval{1000};

constexpr const char* kNowUs = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

pg::TargetOptions TargetOptionsOf(const PostgresAuditOptions& options) {
  pg::TargetOptions target;
  target.tls = options.tls;
  target.connect_timeout_seconds = options.connect_timeout_seconds;
  return target;
}

bool IsBroken(const std::exception& e, const pqxx::connection* conn) {
  return dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
         dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr || conn == nullptr ||
         !conn->is_open();
}

std::string TimestampOfMicros(int64_t micros) {
  return audit_internal::FormatTimestamp(
      std::chrono::system_clock::time_point(std::chrono::microseconds(micros)));
}

// The chain's head row and the last record's seq, read in `tx`.
struct StoredHead {
  AuditHead head;
  uint64_t max_seq = 0;
};

StoredHead ReadHead(pqxx::transaction_base& tx) {
  StoredHead out;
  const pqxx::row head = tx.exec1("SELECT seq, hash FROM audit_head");
  out.head.seq = head[0].as<uint64_t>();
  out.head.hash = head[1].as<std::string>();
  out.max_seq = tx.exec1("SELECT coalesce(max(seq), 0) FROM audit_records")[0].as<uint64_t>();
  return out;
}

// One AppendAll call waiting for the writer, on the caller's stack.
struct PendingAppend {
  std::vector<nlohmann::json> events;
  std::vector<Status> statuses;
  OneShotSignal<bool> done;

  Status Result() const {
    for (const Status& status : statuses) {
      if (!status.ok()) return status;
    }
    return Status::Ok();
  }
};

// A record of a group being committed.
struct ChainedRecord {
  PendingAppend* owner;
  size_t index;  // in owner->events
  uint64_t seq;
  std::string hash;
};

class PostgresAuditLog final : public AuditLog {
 public:
  PostgresAuditLog(pg::Target target, PostgresAuditOptions options)
      : target_(std::move(target)),
        options_(std::move(options)),
        name_("postgres " + target_.Describe()) {}

  ~PostgresAuditLog() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
  }

  Status Init();

  Status Commit(std::vector<nlohmann::json>& events) override;
  Result<std::vector<nlohmann::json>> ForRequest(std::string_view request_id,
                                                 size_t limit) const override;
  Result<std::vector<AuditRecordAt>> ReadBackward(std::optional<uint64_t> position,
                                                  size_t max_records) const override;
  Result<std::vector<AuditRecordAt>> ReadForward(uint64_t position,
                                                 size_t max_records) const override;
  AuditHead head() const override {
    std::lock_guard lock(head_mu_);
    return head_;
  }
  Status health() const override {
    std::lock_guard lock(mu_);
    return health_;
  }
  uint64_t flush_count() const override { return flush_count_.load(std::memory_order_relaxed); }
  const std::string& path() const override { return name_; }

 private:
  Result<Connection> Connect() const;
  // (seq, line) rows as records; a record's `before` is its seq (reading
  // backwards) or the seq before it (forwards), `after` its seq.
  Result<std::vector<AuditRecordAt>> RecordsOf(const pqxx::result& rows, bool before_is_seq) const;
  // Runs `read` on the reader connection, once more on a new connection
  // when the old one turns out broken.
  template <typename Read>
  auto WithReader(const char* what, Read read) const
      -> decltype(read(std::declval<pqxx::nontransaction&>()));
  Status CheckChain(pqxx::transaction_base& tx, const StoredHead& stored);
  void WriterLoop();
  // Commits `group`, setting every status; the failure that closes the log
  // (Unavailable), or Ok.
  Status CommitGroup(const std::vector<PendingAppend*>& group);
  // One attempt; nullopt when it must be tried again on a new connection.
  std::optional<Status> TryCommit(const std::vector<PendingAppend*>& group,
                                  std::vector<ChainedRecord>* chained);
  // After a commit: the new head, the checkpointer, the crash points.
  void Published(const std::vector<ChainedRecord>& chained);
  // Whether the record `seq` with `hash` is in the chain (an in-doubt commit).
  Result<bool> Committed(uint64_t seq, const std::string& hash);
  bool Probe();

  const pg::Target target_;
  const PostgresAuditOptions options_;
  const std::string name_;

  Connection writer_;  // writer thread only, after Init

  mutable std::mutex reader_mu_;
  mutable Connection reader_;  // guarded by reader_mu_; for the reads

  mutable std::mutex mu_;
  std::condition_variable cv_;        // queue_ gained an entry, or stopping_
  std::deque<PendingAppend*> queue_;  // guarded by mu_
  size_t queued_records_ = 0;         // guarded by mu_
  Status health_;                     // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::thread writer_thread_;

  mutable std::mutex head_mu_;
  AuditHead head_;  // guarded by head_mu_

  std::atomic<uint64_t> flush_count_{0};
};

Result<Connection> PostgresAuditLog::Connect() const {
  AIRLOCK_ASSIGN_OR_RETURN(Connection conn, target_.Connect());
  try {
    pqxx::nontransaction tx(*conn);
    tx.exec("SET idle_in_transaction_session_timeout = 10000");
  } catch (const std::exception& e) {
    return target_.Failure("configuring the audit connection", e);
  }
  return conn;
}

Status PostgresAuditLog::Init() {
  AIRLOCK_ASSIGN_OR_RETURN(writer_, Connect());
  try {
    pqxx::read_transaction tx(*writer_);
    int version = 0;
    if (tx.exec1("SELECT to_regclass('schema_version') IS NOT NULL")[0].as<bool>()) {
      version = tx.exec1("SELECT coalesce(max(version), 0) FROM schema_version")[0].as<int>();
    }
    if (version != PostgresStateSchemaVersion()) {
      return Status::FailedPrecondition(
          "audit chain in " + name_ + ": the database schema is at version " +
          std::to_string(version) + ", this kernel's is " +
          std::to_string(PostgresStateSchemaVersion()) +
          (version < PostgresStateSchemaVersion() ? ": run `airlockd state migrate --config FILE`"
                                                  : ": it was written by a newer airlockd"));
    }
    const StoredHead stored = ReadHead(tx);
    AIRLOCK_RETURN_IF_ERROR(CheckChain(tx, stored));
    head_ = stored.head;
  } catch (const std::exception& e) {
    return target_.Failure("reading the audit chain", e);
  }
  writer_thread_ = std::thread([this] { WriterLoop(); });
  return Status::Ok();
}

Status PostgresAuditLog::CheckChain(pqxx::transaction_base& tx, const StoredHead& stored) {
  const std::string where = "audit chain in " + name_;
  if (stored.head.seq != stored.max_seq) {
    return Status::FailedPrecondition(
        where + ": its head row says seq " + std::to_string(stored.head.seq) +
        " but the records end at seq " + std::to_string(stored.max_seq) +
        ": records were removed or added outside the kernel");
  }
  audit_internal::PointChecker points(options_.log.trusted_points);
  uint64_t last_seq = 0;
  std::string last_hash(kGenesisHash);
  nlohmann::json record;
  std::string hash;
  while (true) {
    const pqxx::result rows = tx.exec_params(
        "SELECT seq, hash, line FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2",
        static_cast<int64_t>(last_seq), kScanBatch);
    for (const auto& row : rows) {
      const std::string_view line(row[2].c_str(), row[2].size());
      uint64_t seq = 0;
      auto problem =
          audit_internal::CheckRecordLine(line, last_seq + 1, last_hash, &record, &seq, &hash);
      if (!problem && row[1].as<std::string>() != hash) {
        problem = "its hash column differs from the record's hash";
      }
      if (problem) {
        return Status::FailedPrecondition(where + " is damaged at seq " +
                                          std::to_string(last_seq + 1) + ": " + *problem);
      }
      points.OnRecord(seq, hash);
      last_seq = seq;
      last_hash = hash;
    }
    if (rows.size() < static_cast<size_t>(kScanBatch)) break;
  }
  if (auto contradiction = points.Finish(last_seq)) {
    return Status::FailedPrecondition(where +
                                      " contradicts its signed checkpoints: " + *contradiction);
  }
  if (last_seq != stored.head.seq || last_hash != stored.head.hash) {
    return Status::FailedPrecondition(where + ": its head row does not match record seq " +
                                      std::to_string(last_seq));
  }
  return Status::Ok();
}

Status PostgresAuditLog::Commit(std::vector<nlohmann::json>& events) {
  if (events.empty()) return Status::Ok();
  for (const auto& event : events) AIRLOCK_RETURN_IF_ERROR(audit_internal::ValidateEvent(event));
  PendingAppend pending;
  pending.statuses.resize(events.size());
  {
    std::lock_guard lock(mu_);
    if (!health_.ok()) return health_;
    if (stopping_) return Status::Unavailable("audit log unavailable: the kernel is stopping");
    if (queued_records_ + events.size() > options_.log.max_pending) {
      return Status::ResourceExhausted("audit log queue is full");
    }
    pending.events = std::move(events);
    queue_.push_back(&pending);
    queued_records_ += pending.events.size();
  }
  cv_.notify_one();
  pending.done.Wait();
  events = std::move(pending.events);  // the caller's again, for the observer
  return pending.Result();
}

void PostgresAuditLog::WriterLoop() {
  std::vector<PendingAppend*> group;
  const size_t max_batch = std::max<size_t>(1, options_.max_batch);
  std::unique_lock lock(mu_);
  while (true) {
    if (!health_.ok()) {
      // Closed: nothing is queued (appends are refused); probe until the
      // database is writable again.
      if (cv_.wait_for(lock, kProbeInterval, [&] { return stopping_; })) return;
      lock.unlock();
      const bool back = Probe();
      lock.lock();
      if (back) {
        spdlog::info("audit chain in {} is writable again", name_);
        health_ = Status::Ok();
      }
      continue;
    }
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, every append answered
    size_t records = 0;
    group.clear();
    while (!queue_.empty() &&
           (group.empty() || records + queue_.front()->events.size() <= max_batch)) {
      records += queue_.front()->events.size();
      group.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    const Status failure = CommitGroup(group);
    lock.lock();
    queued_records_ -= records;
    if (!failure.ok() && health_.ok()) {
      spdlog::error("audit chain in {} failed closed: {}", name_, failure.message());
      health_ = failure;
      // Whatever is still queued was accepted before the failure: refuse it
      // now rather than hold it until the database is back.
      for (PendingAppend* waiting : queue_) {
        for (Status& status : waiting->statuses) status = failure;
        queued_records_ -= waiting->events.size();
        waiting->done.Post(true);
      }
      queue_.clear();
    }
    lock.unlock();
    for (PendingAppend* pending : group) pending->done.Post(true);
    lock.lock();
  }
}

Status PostgresAuditLog::CommitGroup(const std::vector<PendingAppend*>& group) {
  std::vector<ChainedRecord> chained;
  Status last_failure;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (!writer_) {
      auto connected = Connect();
      if (!connected.ok()) {
        last_failure = connected.status();
        break;  // the server is unreachable: fail closed at once
      }
      writer_ = std::move(connected).value();
    }
    chained.clear();
    std::optional<Status> outcome = TryCommit(group, &chained);
    if (outcome && outcome->ok()) return Status::Ok();
    if (outcome) {
      last_failure = *outcome;
      break;
    }
    // The connection broke. If the group's last record is in the chain, the
    // commit went through before the break.
    writer_.reset();
    if (!chained.empty()) {
      Result<bool> committed = Committed(chained.back().seq, chained.back().hash);
      if (committed.ok() && *committed) {
        // TryCommit left the statuses Ok for the chained records.
        Published(chained);
        return Status::Ok();
      }
      if (!committed.ok()) last_failure = committed.status();
    }
    if (last_failure.ok()) {
      last_failure = Status::Unavailable("audit log unavailable: the connection to " +
                                         target_.Describe() + " broke during a commit");
    }
  }
  Status failure = Status::Unavailable(
      "audit log unavailable: " +
      (last_failure.ok() ? std::string("cannot commit to ") + name_ : last_failure.message()));
  for (PendingAppend* pending : group) {
    for (Status& status : pending->statuses) {
      if (status.ok()) status = failure;
    }
  }
  return failure;
}

std::optional<Status> PostgresAuditLog::TryCommit(const std::vector<PendingAppend*>& group,
                                                  std::vector<ChainedRecord>* chained) {
  pqxx::connection& conn = *writer_;
  bool in_transaction = false;
  try {
    pqxx::nontransaction tx(conn);
    in_transaction = true;
    const pqxx::row head =
        tx.exec(std::string("BEGIN; SELECT seq, hash, ") + kNowUs + " FROM audit_head FOR UPDATE")
            .at(0);
    uint64_t seq = head[0].as<uint64_t>() + 1;
    std::string prev = head[1].as<std::string>();
    const std::string ts = TimestampOfMicros(head[2].as<int64_t>());

    nlohmann::json rows = nlohmann::json::array();
    for (PendingAppend* pending : group) {
      for (size_t i = 0; i < pending->events.size(); ++i) {
        pending->statuses[i] = Status::Ok();
        nlohmann::json record = pending->events[i];
        record["seq"] = seq;
        record["ts"] = ts;
        record["prev"] = prev;
        const std::string canonical = audit_internal::CanonicalDump(record);
        if (canonical.size() > options_.log.max_record_bytes) {
          pending->statuses[i] = Status::InvalidArgument(
              "audit event too large: " + std::to_string(canonical.size()) + " bytes (limit " +
              std::to_string(options_.log.max_record_bytes) + ")");
          continue;
        }
        std::string hash = audit_internal::ChainHash(prev, canonical);
        std::string line;
        audit_internal::AppendRecordLine(canonical, hash, &line);
        line.pop_back();  // the newline
        nlohmann::json row = {{"seq", seq}, {"hash", hash}, {"line", std::move(line)}};
        auto request_id = record.find("request_id");
        row["request_id"] = request_id != record.end() ? *request_id : nlohmann::json();
        rows.push_back(std::move(row));
        chained->push_back(ChainedRecord{pending, i, seq, hash});
        prev = std::move(hash);
        ++seq;
      }
    }
    if (chained->empty()) {
      tx.exec("ROLLBACK");
      return Status::Ok();
    }
    const std::string payload = rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    tx.exec(
        "INSERT INTO audit_records (seq, request_id, hash, line) "
        "SELECT (e->>'seq')::bigint, e->>'request_id', e->>'hash', e->>'line' "
        "FROM jsonb_array_elements(" +
        tx.quote(payload) +
        "::jsonb) AS e; "
        "UPDATE audit_head SET seq = " +
        std::to_string(chained->back().seq) + ", hash = " + tx.quote(chained->back().hash) +
        "; COMMIT");
    in_transaction = false;
  } catch (const std::exception& e) {
    if (IsBroken(e, &conn)) return std::nullopt;
    const Status failure = target_.Failure("appending to the audit chain", e);
    if (in_transaction) {
      try {
        pqxx::nontransaction rollback(conn);
        rollback.exec("ROLLBACK");
      } catch (const std::exception&) {
        writer_.reset();
      }
    }
    return failure;
  }
  Published(*chained);
  return Status::Ok();
}

void PostgresAuditLog::Published(const std::vector<ChainedRecord>& chained) {
  flush_count_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(head_mu_);
    head_ = AuditHead{chained.back().seq, chained.back().hash};
  }
  NotifyDurable(chained.back().seq);
  for (const ChainedRecord& record : chained) {
    audit_internal::AfterDurableRecord(record.owner->events[record.index]);
  }
}

Result<bool> PostgresAuditLog::Committed(uint64_t seq, const std::string& hash) {
  auto connected = Connect();
  if (!connected.ok()) return connected.status();
  writer_ = std::move(connected).value();
  try {
    pqxx::nontransaction tx(*writer_);
    const pqxx::result found =
        tx.exec_params("SELECT hash FROM audit_records WHERE seq = $1", static_cast<int64_t>(seq));
    return !found.empty() && found[0][0].as<std::string>() == hash;
  } catch (const std::exception& e) {
    writer_.reset();
    return target_.Failure("checking an in-doubt audit commit", e);
  }
}

bool PostgresAuditLog::Probe() {
  if (!writer_) {
    auto connected = Connect();
    if (!connected.ok()) return false;
    writer_ = std::move(connected).value();
  }
  try {
    pqxx::nontransaction tx(*writer_);
    tx.exec("SELECT 1 FROM audit_head");
    return true;
  } catch (const std::exception&) {
    writer_.reset();
    return false;
  }
}

template <typename Read>
auto PostgresAuditLog::WithReader(const char* what, Read read) const
    -> decltype(read(std::declval<pqxx::nontransaction&>())) {
  std::lock_guard lock(reader_mu_);
  for (int attempt = 0;; ++attempt) {
    bool fresh = false;
    if (!reader_) {
      auto connected = Connect();
      if (!connected.ok()) return connected.status();
      reader_ = std::move(connected).value();
      fresh = true;
    }
    try {
      pqxx::nontransaction tx(*reader_);
      return read(tx);
    } catch (const std::exception& e) {
      const bool broken = IsBroken(e, reader_.get());
      if (broken) reader_.reset();
      if (broken && !fresh && attempt == 0) continue;
      return target_.Failure(what, e);
    }
  }
}

Result<std::vector<nlohmann::json>> PostgresAuditLog::ForRequest(std::string_view request_id,
                                                                 size_t limit) const {
  return WithReader(
      "reading the audit chain",
      [&](pqxx::nontransaction& tx) -> Result<std::vector<nlohmann::json>> {
        const pqxx::result rows = tx.exec_params(
            "SELECT line FROM audit_records WHERE request_id = $1 ORDER BY seq LIMIT $2",
            std::string(request_id), static_cast<int64_t>(limit));
        std::vector<nlohmann::json> records;
        records.reserve(rows.size());
        for (const auto& row : rows) {
          auto record = nlohmann::json::parse(row[0].c_str(), nullptr, /*allow_exceptions=*/false);
          if (record.is_discarded()) {
            return Status::Internal("an audit record of request " + std::string(request_id) +
                                    " in " + name_ + " is unreadable");
          }
          records.push_back(std::move(record));
        }
        return records;
      });
}

Result<std::vector<AuditRecordAt>> PostgresAuditLog::RecordsOf(const pqxx::result& rows,
                                                               bool before_is_seq) const {
  std::vector<AuditRecordAt> records;
  records.reserve(rows.size());
  for (const auto& row : rows) {
    auto record = nlohmann::json::parse(row[1].c_str(), nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) {
      return Status::Internal("audit record " + std::string(row[0].c_str()) + " in " + name_ +
                              " is unreadable");
    }
    const uint64_t seq = row[0].as<uint64_t>();
    records.push_back(AuditRecordAt{std::move(record), before_is_seq ? seq : seq - 1, seq});
  }
  return records;
}

Result<std::vector<AuditRecordAt>> PostgresAuditLog::ReadBackward(std::optional<uint64_t> position,
                                                                  size_t max_records) const {
  // A position is a sequence number: the records before it come next.
  if (position && *position > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("not a place in the audit log");
  }
  return WithReader(
      "reading the audit chain",
      [&](pqxx::nontransaction& tx) -> Result<std::vector<AuditRecordAt>> {
        const int64_t before =
            position ? static_cast<int64_t>(*position) : std::numeric_limits<int64_t>::max();
        const pqxx::result rows = tx.exec_params(
            "SELECT seq, line FROM audit_records WHERE seq < $1 ORDER BY seq DESC LIMIT $2", before,
            static_cast<int64_t>(max_records));
        return RecordsOf(rows, /*before_is_seq=*/true);
      });
}

Result<std::vector<AuditRecordAt>> PostgresAuditLog::ReadForward(uint64_t position,
                                                                 size_t max_records) const {
  // A position is the last sequence number read: the records after it.
  if (position > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("not a place in the audit log");
  }
  return WithReader(
      "reading the audit chain",
      [&](pqxx::nontransaction& tx) -> Result<std::vector<AuditRecordAt>> {
        const pqxx::result rows = tx.exec_params(
            "SELECT seq, line FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2",
            static_cast<int64_t>(position), static_cast<int64_t>(max_records));
        return RecordsOf(rows, /*before_is_seq=*/false);
      });
}

}  // namespace

Result<std::unique_ptr<AuditLog>> OpenPostgresAuditLog(const Secret& dsn,
                                                       PostgresAuditOptions options) {
  if (options.log.max_record_bytes == 0 ||
      options.log.max_record_bytes > audit_internal::kMaxLineBytes / 2) {
    return Status::InvalidArgument("audit max_record_bytes out of range");
  }
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, TargetOptionsOf(options)));
  auto log = std::make_unique<PostgresAuditLog>(std::move(target), std::move(options));
  AIRLOCK_RETURN_IF_ERROR(log->Init());
  return std::unique_ptr<AuditLog>(std::move(log));
}

Result<AuditExport> ExportPostgresAudit(const Secret& dsn, const PostgresAuditOptions& options,
                                        const std::function<Status(std::string_view)>& write) {
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, TargetOptionsOf(options)));
  AIRLOCK_ASSIGN_OR_RETURN(Connection conn, target.Connect());
  AuditExport out;
  out.target = target.Describe();
  try {
    // One snapshot: the head and the records agree even while replicas append.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(*conn);
    const StoredHead stored = ReadHead(tx);
    out.head = stored.head;
    uint64_t last_seq = 0;
    std::string buffer;
    while (true) {
      const pqxx::result rows =
          tx.exec_params("SELECT seq, line FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2",
                         static_cast<int64_t>(last_seq), kScanBatch);
      buffer.clear();
      for (const auto& row : rows) {
        last_seq = row[0].as<uint64_t>();
        buffer.append(row[1].c_str(), row[1].size());
        buffer.push_back('\n');
        ++out.records;
      }
      if (!buffer.empty()) AIRLOCK_RETURN_IF_ERROR(write(buffer));
      if (rows.size() < static_cast<size_t>(kScanBatch)) break;
    }
  } catch (const std::exception& e) {
    return target.Failure("exporting the audit chain", e);
  }
  return out;
}

}  // namespace airlock
