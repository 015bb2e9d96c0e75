#include "kernel/state/sqlite_state_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kernel/common/file_lock.h"
#include "kernel/common/one_shot_signal.h"
#include "kernel/state/page_token.h"
#include "kernel/state/request_text_cache.h"
#include "kernel/state/schema_migrations.h"
#include "kernel/state/sqlite_handle.h"
#include "kernel/state/stored_row.h"

namespace airlock {
namespace {

// Column order shared by every SELECT (RowToRecord) and the INSERT bindings.
constexpr const char* kColumns =
    "id, state, version, requester_subject, created_at_us, updated_at_us, deadline_us, reason, "
    "requester, request, decision, approvals, enclave, tunnel";
enum Column : int {
  kId,
  kState,
  kVersion,
  kRequesterSubject,
  kCreatedAt,
  kUpdatedAt,
  kDeadline,
  kReason,
  kRequester,
  kRequest,
  kDecision,
  kApprovals,
  kEnclave,
  kTunnel,
};
// Save's parameter for the tenant column (RequesterTenant), after the
// kColumns ones: no reader needs the column back, only List's filter.
constexpr int kTenantParam = kTunnel + 2;
// The schema, oldest first; see schema_migrations.h. Only ever append.
constexpr SchemaMigration kMigrations[] = {
    {1, "requests with newest-first indexes by all, state and requester", R"sql(
CREATE TABLE requests (
  id TEXT PRIMARY KEY NOT NULL,
  state TEXT NOT NULL,
  version INTEGER NOT NULL,
  requester_subject TEXT NOT NULL,
  created_at_us INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  deadline_us INTEGER NOT NULL,
  reason TEXT NOT NULL,
  requester TEXT NOT NULL,
  request TEXT NOT NULL,
  decision TEXT NOT NULL,
  approvals TEXT NOT NULL,
  enclave TEXT NOT NULL,
  tunnel TEXT NOT NULL
);
CREATE INDEX requests_by_created ON requests (created_at_us DESC, id DESC);
CREATE INDEX requests_by_state ON requests (state, created_at_us DESC, id DESC);
CREATE INDEX requests_by_requester ON requests (requester_subject, created_at_us DESC, id DESC);
)sql"},
    // The notification outbox (kernel/notify/): messages queued in the
    // transaction of the change they tell of. The first index serves the
    // claim (a notifier's pending messages in due order), the second the
    // purge of settled ones.
    {2, "notification_outbox: notifications queued with the changes they tell of", R"sql(
CREATE TABLE notification_outbox (
  id TEXT PRIMARY KEY NOT NULL,
  notifier TEXT NOT NULL,
  request_id TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'abandoned')),
  created_at_us INTEGER NOT NULL,
  next_attempt_at_us INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  settled_at_us INTEGER NOT NULL,
  claimed_by TEXT,
  claimed_until_us INTEGER
);
CREATE INDEX notification_outbox_due
  ON notification_outbox (notifier, status, next_attempt_at_us, created_at_us, id);
CREATE INDEX notification_outbox_settled ON notification_outbox (settled_at_us)
  WHERE status <> 'pending';
)sql"},
    // Sites an admin suspended (SiteSuspension): enforced across restarts.
    {3, "site_suspensions: sites an admin suspended, refused until resumed", R"sql(
CREATE TABLE site_suspensions (
  agent TEXT PRIMARY KEY NOT NULL,
  reason TEXT NOT NULL,
  suspended_by TEXT NOT NULL,
  since_us INTEGER NOT NULL
);
)sql"},
    // What each site owns (StoredSiteCatalog): known again after a restart.
    {4, "site_catalogs: the metadata of the datasets each site owns", R"sql(
CREATE TABLE site_catalogs (
  agent TEXT PRIMARY KEY NOT NULL,
  datasets TEXT NOT NULL,
  received_at_us INTEGER NOT NULL
);
)sql"},
    // Each request's tenant (RequesterTenant) as a column, so that List
    // filters by it in the index and its pages stay full. Rows saved before
    // take it from their requester document, as Save derives it.
    {5, "requests.tenant: the requester's tenant, listed newest first", R"sql(
ALTER TABLE requests ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
UPDATE requests SET tenant = json_extract(requester, '$.tenant')
  WHERE json_type(requester, '$.tenant') = 'text';
CREATE INDEX requests_by_tenant ON requests (tenant, created_at_us DESC, id DESC);
)sql"},
};

// ?N numbers follow the Column enum (plus one); ?15 is kTenantParam.
constexpr const char* kInsertSql =
    "INSERT INTO requests (id, state, version, requester_subject, created_at_us, updated_at_us, "
    "deadline_us, reason, requester, request, decision, approvals, enclave, tunnel, tenant) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
    "ON CONFLICT (id) DO NOTHING";
// created_at_us (?5) is fixed by the insert.
constexpr const char* kUpdateSql =
    "UPDATE requests SET state = ?2, version = ?3, requester_subject = ?4, updated_at_us = ?6, "
    "deadline_us = ?7, reason = ?8, requester = ?9, request = ?10, decision = ?11, "
    "approvals = ?12, enclave = ?13, tunnel = ?14, tenant = ?15 WHERE id = ?1 AND "
    "version = ?3 - 1";

// Outbox statements. A queued message is pending whatever its status says;
// an id already queued keeps its row.
constexpr const char* kOutboxInsertSql =
    "INSERT INTO notification_outbox (id, notifier, request_id, payload, status, created_at_us, "
    "next_attempt_at_us, attempts, last_error, settled_at_us) VALUES (?1, ?2, ?3, ?4, 'pending', "
    "?5, ?6, ?7, ?8, 0) ON CONFLICT (id) DO NOTHING";
// ?1 notifier, ?2 now, ?3 limit. A claim is running until its
// claimed_until_us has passed, whoever holds it: a claimer that claims again
// while its deliveries are in flight must not get them twice.
constexpr const char* kOutboxDueSql =
    "SELECT id, notifier, request_id, payload, status, created_at_us, next_attempt_at_us, "
    "attempts, last_error, settled_at_us FROM notification_outbox WHERE notifier = ?1 AND "
    "status = 'pending' AND next_attempt_at_us <= ?2 AND (claimed_by IS NULL OR "
    "claimed_until_us < ?2) ORDER BY next_attempt_at_us, created_at_us, id LIMIT ?3";
constexpr const char* kOutboxClaimSql =
    "UPDATE notification_outbox SET claimed_by = ?2, claimed_until_us = ?3 WHERE id = ?1";
// ?1 id, ?2 claimer, ?3 status, ?4 error, ?5 settled_at_us, ?6 next attempt
// (NULL: as stored). Settling gives the claim up.
constexpr const char* kOutboxSettleSql =
    "UPDATE notification_outbox SET status = ?3, attempts = attempts + 1, last_error = ?4, "
    "settled_at_us = ?5, next_attempt_at_us = coalesce(?6, next_attempt_at_us), "
    "claimed_by = NULL, claimed_until_us = NULL "
    "WHERE id = ?1 AND claimed_by = ?2 AND status = 'pending'";
constexpr const char* kOutboxPurgeSql =
    "DELETE FROM notification_outbox WHERE status <> 'pending' AND settled_at_us < ?1";
constexpr const char* kOutboxReleaseSql =
    "UPDATE notification_outbox SET claimed_by = NULL, claimed_until_us = NULL "
    "WHERE claimed_by = ?1 AND status = 'pending'";
constexpr const char* kOutboxLoadSql =
    "SELECT id, notifier, request_id, payload, status, created_at_us, next_attempt_at_us, "
    "attempts, last_error, settled_at_us FROM notification_outbox WHERE id = ?1";
constexpr const char* kOutboxCountAllSql =
    "SELECT status, count(*) FROM notification_outbox GROUP BY status";
constexpr const char* kOutboxCountOneSql =
    "SELECT status, count(*) FROM notification_outbox WHERE notifier = ?1 GROUP BY status";

// List variants: bit 0 state filter, bit 1 requester filter, bit 2 cursor,
// bit 3 tenant filter.
constexpr int kListVariants = 16;

std::string ListSql(int variant) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM requests WHERE 1 = 1";
  if (variant & 1) sql += " AND state = :state";
  if (variant & 2) sql += " AND requester_subject = :requester";
  if (variant & 8) sql += " AND tenant = :tenant";
  if (variant & 4) sql += " AND (created_at_us, id) < (:created, :after_id)";
  sql += " ORDER BY created_at_us DESC, id DESC LIMIT :limit";
  return sql;
}

std::string ActiveSql() {
  return std::string("SELECT ") + kColumns + " FROM requests WHERE state IN (" +
         NonTerminalStatesSql() + ") ORDER BY created_at_us, id";
}

StoredRowView RowView(sqlite3_stmt* stmt) {
  StoredRowView row;
  row.id = sqlite::ColumnText(stmt, kId);
  row.state = sqlite::ColumnText(stmt, kState);
  row.version = sqlite3_column_int64(stmt, kVersion);
  row.requester_subject = sqlite::ColumnText(stmt, kRequesterSubject);
  row.created_at_us = sqlite3_column_int64(stmt, kCreatedAt);
  row.updated_at_us = sqlite3_column_int64(stmt, kUpdatedAt);
  row.deadline_us = sqlite3_column_int64(stmt, kDeadline);
  row.reason = sqlite::ColumnText(stmt, kReason);
  for (int i = 0; i < 6; ++i) row.documents[i] = sqlite::ColumnText(stmt, kRequester + i);
  return row;
}

Result<RequestRecord> RowToRecord(sqlite3_stmt* stmt) {
  return RecordFromRow(RowView(stmt));
}

Result<StoredRequestText> RowToText(sqlite3_stmt* stmt) {
  return TextFromRow(RowView(stmt));
}

// Steps `stmt` to completion, collecting every row as a record.
Status CollectRows(sqlite3* db, sqlite3_stmt* stmt, std::vector<RequestRecord>* out) {
  while (true) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return Status::Ok();
    if (rc != SQLITE_ROW) return sqlite::Error(db, "reading requests");
    AIRLOCK_ASSIGN_OR_RETURN(RequestRecord record, RowToRecord(stmt));
    out->push_back(std::move(record));
  }
}

// The outbox row `stmt` is on, its columns in kOutboxColumns order.
Result<OutboxMessage> RowToOutbox(sqlite3_stmt* stmt) {
  StoredOutboxView row;
  row.id = sqlite::ColumnText(stmt, 0);
  row.notifier = sqlite::ColumnText(stmt, 1);
  row.request_id = sqlite::ColumnText(stmt, 2);
  row.payload = sqlite::ColumnText(stmt, 3);
  row.status = sqlite::ColumnText(stmt, 4);
  row.created_at_us = sqlite3_column_int64(stmt, 5);
  row.next_attempt_at_us = sqlite3_column_int64(stmt, 6);
  row.attempts = sqlite3_column_int64(stmt, 7);
  row.last_error = sqlite::ColumnText(stmt, 8);
  row.settled_at_us = sqlite3_column_int64(stmt, 9);
  return OutboxFromRow(row);
}

Status RunOnce(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  sqlite::StmtScope scope(stmt);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sqlite::Error(db, what);
  return Status::Ok();
}

// A Save waiting for the writer; lives on the caller's stack until the
// writer posts `committed` (after setting `status`). The caller serializes
// the documents so the writer only binds and steps.
struct PendingSave {
  const RequestRecord* record = nullptr;
  // Queued in the same transaction when the row is written (the caller's).
  const std::vector<OutboxMessage>* outbox = nullptr;
  std::string_view state;
  std::string requester_subject;
  std::string tenant;
  std::array<std::string, 6> documents;
  Status status;
  OneShotSignal<bool> committed;
};

// Any other write (the outbox's), queued to the writer like a Save so that
// the file keeps one writer: `apply` runs on the writer thread inside the
// group's transaction, in queue order with the Saves, and leaves what it
// found in its caller's frame. A failing `apply` is a storage failure and
// fails the group, as one in a Save does. `status` is Ok only once the
// transaction committed.
struct PendingOp {
  std::function<Status()> apply;
  Status status;
  OneShotSignal<bool> committed;
};

using PendingWrite = std::variant<PendingSave*, PendingOp*>;

Status& StatusOf(const PendingWrite& write) {
  return std::visit([](auto* pending) -> Status& { return pending->status; }, write);
}

// One read-only connection with its reusable statements.
struct Reader {
  sqlite::Db db;
  sqlite::Stmt load;
  sqlite::Stmt active;
  sqlite::Stmt outbox_load;
  sqlite::Stmt outbox_count_all;
  sqlite::Stmt outbox_count_one;
  std::array<sqlite::Stmt, kListVariants> list;  // prepared on first use
};

class SqliteStateStoreImpl final : public SqliteStateStore {
 public:
  SqliteStateStoreImpl(std::string path, SqliteStateStoreOptions options)
      : path_(std::move(path)), options_(options), text_cache_(options.text_cache_entries) {}

  ~SqliteStateStoreImpl() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    writer_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
  }

  Status Init();

  Status SaveWithOutbox(const RequestRecord& record,
                        const std::vector<OutboxMessage>& outbox) override;
  Status EnqueueOutbox(const std::vector<OutboxMessage>& messages) override;
  Result<std::vector<OutboxMessage>> ClaimOutbox(std::string_view notifier,
                                                 std::string_view claimer, int64_t now_us,
                                                 int64_t lease_us, size_t limit) override;
  Result<bool> SettleOutbox(std::string_view id, std::string_view claimer, OutboxOutcome outcome,
                            int64_t next_attempt_at_us, std::string_view error,
                            int64_t now_us) override;
  Result<std::optional<OutboxMessage>> LoadOutbox(std::string_view id) override;
  Result<OutboxCounts> CountOutbox(std::string_view notifier) override;
  Result<size_t> PurgeOutbox(int64_t before_us) override;
  Result<size_t> ReleaseOutboxClaims(std::string_view claimer) override;
  Result<std::optional<RequestRecord>> Load(std::string_view id) override;
  Result<std::shared_ptr<const StoredRequestText>> LoadText(std::string_view id) override;
  Result<RequestPage> List(const RequestFilter& filter) override;
  Result<std::vector<RequestRecord>> LoadActive() override;
  Result<int64_t> AcquireLease(const ReplicaHeartbeat& beat) override;
  Status RecordHeartbeat(const ReplicaHeartbeat& beat) override;
  Result<bool> FenceReplica(std::string_view replica_id, int64_t lease_epoch,
                            int64_t stale_after_us) override;
  Status ReleaseLease(std::string_view replica_id, int64_t lease_epoch) override;
  Result<std::vector<ReplicaStatus>> ListReplicas() override;
  Status RecordAgentLinks(std::string_view replica_id, const std::vector<std::string>& held,
                          const std::vector<std::string>& claimed) override;
  Result<std::vector<AgentLink>> ListAgentLinks() override;
  Result<bool> SuspendSite(const SiteSuspension& suspension) override;
  Result<bool> ResumeSite(std::string_view agent) override;
  Result<std::vector<SiteSuspension>> ListSiteSuspensions() override;
  Status RecordSiteCatalog(const StoredSiteCatalog& catalog) override;
  Result<std::vector<StoredSiteCatalog>> ListSiteCatalogs() override;

  uint64_t commit_count() const override { return commit_count_.load(std::memory_order_relaxed); }
  uint64_t save_count() const override { return save_count_.load(std::memory_order_relaxed); }
  uint64_t checkpoint_count() const override {
    return checkpoint_count_.load(std::memory_order_relaxed);
  }
  SchemaMigrationReport migration() const override { return migration_; }

 private:
  // Returns a reader to the pool when it goes out of scope.
  class Lease {
   public:
    Lease(SqliteStateStoreImpl* store, std::unique_ptr<Reader> reader)
        : store_(store), reader_(std::move(reader)) {}
    ~Lease() { store_->ReleaseReader(std::move(reader_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Reader* operator->() const { return reader_.get(); }

   private:
    SqliteStateStoreImpl* store_;
    std::unique_ptr<Reader> reader_;
  };

  Status Configure(sqlite3* db);
  Status CreateOrCheckSchema();
  Result<std::unique_ptr<Reader>> OpenReader();
  Lease AcquireReader();
  void ReleaseReader(std::unique_ptr<Reader> reader);

  // Runs the load statement for `id` on a pooled reader and converts the
  // row with `read`; nullopt when there is no such request.
  template <class T, class ReadRow>
  Result<std::optional<T>> LoadRow(std::string_view id, ReadRow read) {
    if (id.empty() || id.size() > kMaxRequestIdBytes) return std::optional<T>();
    Lease reader = AcquireReader();
    sqlite3_stmt* stmt = reader->load.get();
    sqlite::StmtScope scope(stmt);
    sqlite::BindText(stmt, 1, id);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return std::optional<T>();
    if (rc != SQLITE_ROW) return sqlite::Error(reader->db.get(), "loading request");
    AIRLOCK_ASSIGN_OR_RETURN(T row, read(stmt));
    return std::optional<T>(std::move(row));
  }

  // Hands `write` to the writer; the caller then waits for its signal.
  Status Submit(PendingWrite write);
  // Runs `apply` on the writer thread in a group's transaction (PendingOp);
  // Ok once that transaction committed.
  Status RunOnWriter(std::function<Status()> apply);

  void WriterLoop();
  // Writer thread, between commits: whether to checkpoint now, and doing it.
  bool WantsCheckpoint(bool idle) const;
  void Checkpoint();
  // sqlite3_wal_hook: runs on the writer thread after each commit.
  static int OnWalCommit(void* self, sqlite3* db, const char* schema, int wal_pages);
  void CommitBatch(const std::vector<PendingWrite>& batch);
  // Writer thread, after a commit and before the savers are answered.
  void PublishCommitted(const std::vector<PendingWrite>& batch);
  // True when the row (and its outbox) was written; false on a version
  // conflict, which writes nothing.
  Result<bool> Apply(const PendingSave& save);
  Status ConflictFor(const RequestRecord& record);
  // Writer thread: queues `messages` (ids already queued keep their rows).
  Status InsertOutbox(const std::vector<OutboxMessage>& messages);
  // Writer thread: the due messages ClaimOutbox may take, in due order.
  Status SelectDueOutbox(std::string_view notifier, int64_t now_us, size_t limit,
                         std::vector<OutboxMessage>* out);

  const std::string path_;
  const SqliteStateStoreOptions options_;
  const std::string active_sql_ = ActiveSql();

  // Writer connection and statements: used only by the writer thread after Init.
  sqlite::Db writer_db_;
  sqlite::Stmt begin_;
  sqlite::Stmt commit_;
  sqlite::Stmt rollback_;
  sqlite::Stmt insert_;
  sqlite::Stmt update_;
  sqlite::Stmt version_of_;
  sqlite::Stmt outbox_insert_;
  sqlite::Stmt outbox_due_;
  sqlite::Stmt outbox_claim_;
  sqlite::Stmt outbox_settle_;
  sqlite::Stmt outbox_purge_;
  sqlite::Stmt outbox_release_;
  int wal_pages_ = 0;                // log size after the last commit (writer thread)
  FileLock file_lock_;               // "<path>.lock": this store is the only writer
  SchemaMigrationReport migration_;  // set by Init

  RequestTextCache text_cache_;

  // One process owns the file, so the only replica is this one: heartbeats
  // stay in memory.
  std::mutex replicas_mu_;
  std::map<std::string, ReplicaStatus> replicas_;  // guarded by replicas_mu_
  std::map<std::string, AgentLink> agent_links_;   // guarded by replicas_mu_: by agent

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Reader>> idle_readers_;  // guarded by pool_mu_

  std::mutex mu_;
  std::condition_variable writer_cv_;  // queue_ gained an entry or stopping_
  std::vector<PendingWrite> queue_;    // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::thread writer_;

  std::atomic<uint64_t> commit_count_{0};
  std::atomic<uint64_t> save_count_{0};
  std::atomic<uint64_t> checkpoint_count_{0};
};

Status SqliteStateStoreImpl::Configure(sqlite3* db) {
  if (sqlite3_busy_timeout(db, options_.busy_timeout_ms) != SQLITE_OK) {
    return sqlite::Error(db, "setting busy timeout");
  }
  return Status::Ok();
}

Status SqliteStateStoreImpl::Init() {
  // The text cache and the writer's group commits assume no other writer.
  AIRLOCK_ASSIGN_OR_RETURN(file_lock_, FileLock::Acquire(path_ + ".lock"));
  // Create the file ourselves so it gets mode 0600 (SQLite gives its WAL and
  // shm files the same mode).
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Unavailable("cannot create state store " + path_ + ": " + std::strerror(errno));
  }
  ::close(fd);

  AIRLOCK_ASSIGN_OR_RETURN(writer_db_,
                           sqlite::Open(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX));
  sqlite3* db = writer_db_.get();
  AIRLOCK_RETURN_IF_ERROR(Configure(db));
  {
    AIRLOCK_ASSIGN_OR_RETURN(sqlite::Stmt wal, sqlite::Prepare(db, "PRAGMA journal_mode = WAL"));
    if (sqlite3_step(wal.get()) != SQLITE_ROW) return sqlite::Error(db, "enabling WAL");
    const std::string_view mode = sqlite::ColumnText(wal.get(), 0);
    if (mode != "wal") {
      return Status::Unavailable("state store " + path_ + " cannot use WAL (journal mode " +
                                 std::string(mode) + ")");
    }
  }
  AIRLOCK_RETURN_IF_ERROR(sqlite::Exec(db, "PRAGMA synchronous = FULL"));
  AIRLOCK_RETURN_IF_ERROR(CreateOrCheckSchema());

  AIRLOCK_ASSIGN_OR_RETURN(begin_, sqlite::Prepare(db, "BEGIN IMMEDIATE"));
  AIRLOCK_ASSIGN_OR_RETURN(commit_, sqlite::Prepare(db, "COMMIT"));
  AIRLOCK_ASSIGN_OR_RETURN(rollback_, sqlite::Prepare(db, "ROLLBACK"));
  AIRLOCK_ASSIGN_OR_RETURN(insert_, sqlite::Prepare(db, kInsertSql));
  AIRLOCK_ASSIGN_OR_RETURN(update_, sqlite::Prepare(db, kUpdateSql));
  AIRLOCK_ASSIGN_OR_RETURN(version_of_,
                           sqlite::Prepare(db, "SELECT version FROM requests WHERE id = ?1"));
  AIRLOCK_ASSIGN_OR_RETURN(outbox_insert_, sqlite::Prepare(db, kOutboxInsertSql));
  AIRLOCK_ASSIGN_OR_RETURN(outbox_due_, sqlite::Prepare(db, kOutboxDueSql));
  AIRLOCK_ASSIGN_OR_RETURN(outbox_claim_, sqlite::Prepare(db, kOutboxClaimSql));
  AIRLOCK_ASSIGN_OR_RETURN(outbox_settle_, sqlite::Prepare(db, kOutboxSettleSql));
  AIRLOCK_ASSIGN_OR_RETURN(outbox_purge_, sqlite::Prepare(db, kOutboxPurgeSql));
  AIRLOCK_ASSIGN_OR_RETURN(outbox_release_, sqlite::Prepare(db, kOutboxReleaseSql));

  const size_t readers = std::max<size_t>(1, options_.read_connections);
  for (size_t i = 0; i < readers; ++i) {
    AIRLOCK_ASSIGN_OR_RETURN(auto reader, OpenReader());
    idle_readers_.push_back(std::move(reader));
  }
  // Replaces SQLite's automatic checkpoint (see WantsCheckpoint).
  sqlite3_wal_hook(db, &SqliteStateStoreImpl::OnWalCommit, this);
  writer_ = std::thread([this] { WriterLoop(); });
  return Status::Ok();
}

// Applies the pending migrations in one transaction with the rows that
// record them; a newer schema is refused before anything is written.
Status SqliteStateStoreImpl::CreateOrCheckSchema() {
  sqlite3* db = writer_db_.get();
  AIRLOCK_RETURN_IF_ERROR(sqlite::Exec(db, "BEGIN IMMEDIATE"));
  auto fail = [&](Status status) {
    (void)sqlite::Exec(db, "ROLLBACK");  // best effort; `status` says what failed
    return status.WithContext("state store " + path_);
  };
  Status created =
      sqlite::Exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  if (!created.ok()) return fail(created);
  int version = 0;
  {
    auto select = sqlite::Prepare(db, "SELECT max(version) FROM schema_version");
    if (!select.ok()) return fail(select.status());
    if (sqlite3_step(select->get()) != SQLITE_ROW) {
      return fail(sqlite::Error(db, "reading schema version"));
    }
    version = sqlite3_column_int(select->get(), 0);  // NULL (empty table) reads as 0
  }
  auto pending = PendingMigrations(kMigrations, version, "SQLite state store");
  if (!pending.ok()) {
    (void)sqlite::Exec(db, "ROLLBACK");
    return pending.status();
  }
  for (const SchemaMigration* migration : *pending) {
    Status applied = sqlite::Exec(db, migration->sql);
    if (applied.ok()) {
      const std::string record = "INSERT INTO schema_version (version) VALUES (" +
                                 std::to_string(migration->version) + ")";
      applied = sqlite::Exec(db, record.c_str());
    }
    if (!applied.ok()) {
      return fail(
          applied.WithContext("migrating to schema version " + std::to_string(migration->version)));
    }
  }
  migration_.from_version = version;
  migration_.to_version = LatestSchemaVersion(kMigrations);
  return sqlite::Exec(db, "COMMIT").WithContext("state store " + path_);
}

Result<std::unique_ptr<Reader>> SqliteStateStoreImpl::OpenReader() {
  auto reader = std::make_unique<Reader>();
  AIRLOCK_ASSIGN_OR_RETURN(reader->db,
                           sqlite::Open(path_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX));
  AIRLOCK_RETURN_IF_ERROR(Configure(reader->db.get()));
  AIRLOCK_ASSIGN_OR_RETURN(reader->load,
                           sqlite::Prepare(reader->db.get(), std::string("SELECT ") + kColumns +
                                                                 " FROM requests WHERE id = ?1"));
  AIRLOCK_ASSIGN_OR_RETURN(reader->active, sqlite::Prepare(reader->db.get(), active_sql_));
  AIRLOCK_ASSIGN_OR_RETURN(reader->outbox_load, sqlite::Prepare(reader->db.get(), kOutboxLoadSql));
  AIRLOCK_ASSIGN_OR_RETURN(reader->outbox_count_all,
                           sqlite::Prepare(reader->db.get(), kOutboxCountAllSql));
  AIRLOCK_ASSIGN_OR_RETURN(reader->outbox_count_one,
                           sqlite::Prepare(reader->db.get(), kOutboxCountOneSql));
  return reader;
}

SqliteStateStoreImpl::Lease SqliteStateStoreImpl::AcquireReader() {
  std::unique_lock lock(pool_mu_);
  pool_cv_.wait(lock, [&] { return !idle_readers_.empty(); });
  auto reader = std::move(idle_readers_.back());
  idle_readers_.pop_back();
  return Lease(this, std::move(reader));
}

void SqliteStateStoreImpl::ReleaseReader(std::unique_ptr<Reader> reader) {
  {
    std::lock_guard lock(pool_mu_);
    idle_readers_.push_back(std::move(reader));
  }
  pool_cv_.notify_one();
}

Status SqliteStateStoreImpl::SaveWithOutbox(const RequestRecord& record,
                                            const std::vector<OutboxMessage>& outbox) {
  AIRLOCK_ASSIGN_OR_RETURN(
      SerializedRecord serialized,
      SerializeForSave(record, options_.max_record_bytes, /*text_only=*/false));
  AIRLOCK_RETURN_IF_ERROR(ValidateOutbox(outbox));
  PendingSave save;
  save.record = &record;
  save.outbox = &outbox;
  save.state = serialized.state;
  save.requester_subject = std::move(serialized.requester_subject);
  save.tenant = std::move(serialized.tenant);
  save.documents = std::move(serialized.documents);

  AIRLOCK_RETURN_IF_ERROR(Submit(&save));
  save.committed.Wait();
  return save.status;
}

Status SqliteStateStoreImpl::Submit(PendingWrite write) {
  std::unique_lock lock(mu_);
  if (stopping_) return Status::Unavailable("state store is shutting down");
  if (queue_.size() >= options_.max_pending) {
    return Status::ResourceExhausted("state store write queue is full");
  }
  queue_.push_back(write);
  lock.unlock();
  writer_cv_.notify_one();
  return Status::Ok();
}

Status SqliteStateStoreImpl::RunOnWriter(std::function<Status()> apply) {
  PendingOp op;
  op.apply = std::move(apply);
  AIRLOCK_RETURN_IF_ERROR(Submit(&op));
  op.committed.Wait();
  return op.status;
}

void SqliteStateStoreImpl::WriterLoop() {
  std::vector<PendingWrite> batch;
  std::unique_lock lock(mu_);
  while (true) {
    writer_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and every queued write was answered
    batch.swap(queue_);
    lock.unlock();
    CommitBatch(batch);
    PublishCommitted(batch);
    for (const PendingWrite& write : batch) {
      std::visit([](auto* pending) { pending->committed.Post(true); }, write);
    }
    batch.clear();
    lock.lock();
    if (WantsCheckpoint(/*idle=*/queue_.empty())) {
      lock.unlock();
      Checkpoint();
      lock.lock();
    }
  }
}

// SQLite's automatic checkpoint would run inside the commit that crosses the
// threshold, with every Save queued behind it waiting. The writer instead
// checkpoints after answering its callers, when nobody is queued; only if
// the queue never drains does it checkpoint anyway, at a multiple of the
// threshold, to keep the log bounded. Run on the writer connection between
// transactions, a checkpoint catches up completely, so the next commit
// starts the log from its beginning again.
bool SqliteStateStoreImpl::WantsCheckpoint(bool idle) const {
  const int threshold = options_.checkpoint_pages;
  return wal_pages_ >= threshold && (idle || wal_pages_ >= 4 * threshold);
}

void SqliteStateStoreImpl::Checkpoint() {
  sqlite3* db = writer_db_.get();
  const int rc =
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    checkpoint_count_.fetch_add(1, std::memory_order_relaxed);
    wal_pages_ = 0;
  } else if (rc != SQLITE_BUSY) {
    spdlog::warn("state store {}: checkpoint failed: {}", path_, sqlite3_errmsg(db));
  }
}

int SqliteStateStoreImpl::OnWalCommit(void* self, sqlite3*, const char*, int wal_pages) {
  static_cast<SqliteStateStoreImpl*>(self)->wal_pages_ = wal_pages;
  return SQLITE_OK;
}

void SqliteStateStoreImpl::CommitBatch(const std::vector<PendingWrite>& batch) {
  sqlite3* db = writer_db_.get();
  const auto saves = std::count_if(batch.begin(), batch.end(), [](const PendingWrite& write) {
    return std::holds_alternative<PendingSave*>(write);
  });
  save_count_.fetch_add(static_cast<uint64_t>(saves), std::memory_order_relaxed);
  auto fail_all = [&](const Status& status) {
    for (const PendingWrite& write : batch) StatusOf(write) = status;
  };
  auto abort_with = [&](const Status& status) {
    if (!sqlite3_get_autocommit(db)) (void)RunOnce(db, rollback_.get(), "rollback");
    fail_all(status);
  };

  if (Status begin = RunOnce(db, begin_.get(), "state store begin"); !begin.ok()) {
    fail_all(begin);
    return;
  }
  for (const PendingWrite& write : batch) {
    if (PendingOp* const* op = std::get_if<PendingOp*>(&write)) {
      if (Status applied = (*op)->apply(); !applied.ok()) {
        abort_with(applied);
        return;
      }
      (*op)->status = Status::Ok();
      continue;
    }
    PendingSave* save = std::get<PendingSave*>(write);
    Result<bool> applied = Apply(*save);
    if (!applied.ok()) {
      // Not a conflict: the storage itself failed, so nothing in the group stands.
      abort_with(applied.status());
      return;
    }
    save->status = *applied ? Status::Ok() : ConflictFor(*save->record);
  }
  if (Status commit = RunOnce(db, commit_.get(), "state store commit"); !commit.ok()) {
    abort_with(commit);
    return;
  }
  commit_count_.fetch_add(1, std::memory_order_relaxed);
}

void SqliteStateStoreImpl::PublishCommitted(const std::vector<PendingWrite>& batch) {
  std::vector<RequestTextCache::Committed> committed;
  committed.reserve(batch.size());
  for (const PendingWrite& write : batch) {
    PendingSave* const* pending = std::get_if<PendingSave*>(&write);
    if (pending == nullptr) continue;
    PendingSave* save = *pending;
    if (!save->status.ok()) continue;
    const RequestRecord& record = *save->record;
    RequestTextCache::Committed c;
    c.inserted = record.version == 1;
    StoredRequestText& text = c.text;
    text.id = record.id;
    text.state = record.state;
    text.version = record.version;
    text.requester_subject = std::move(save->requester_subject);
    // The saver no longer needs the serialised documents: they move.
    std::string* documents[] = {&text.requester, &text.request, &text.decision,
                                &text.approvals, &text.enclave, &text.tunnel};
    for (size_t i = 0; i < save->documents.size(); ++i)
      *documents[i] = std::move(save->documents[i]);
    text.reason = record.reason;
    text.created_at_us = record.created_at_us;
    text.updated_at_us = record.updated_at_us;
    text.deadline_us = record.deadline_us;
    committed.push_back(std::move(c));
  }
  // Even an empty group bumps the generation: a failed group may still have
  // changed nothing, but a fill racing it must not be trusted either.
  text_cache_.Publish(std::move(committed));
}

Result<bool> SqliteStateStoreImpl::Apply(const PendingSave& save) {
  const RequestRecord& record = *save.record;
  const bool insert = record.version == 1;
  sqlite3_stmt* stmt = insert ? insert_.get() : update_.get();
  sqlite::StmtScope scope(stmt);
  sqlite::BindText(stmt, kId + 1, record.id);
  sqlite::BindText(stmt, kState + 1, save.state);
  sqlite3_bind_int64(stmt, kVersion + 1, record.version);
  sqlite::BindText(stmt, kRequesterSubject + 1, save.requester_subject);
  if (insert) sqlite3_bind_int64(stmt, kCreatedAt + 1, record.created_at_us);
  sqlite3_bind_int64(stmt, kUpdatedAt + 1, record.updated_at_us);
  sqlite3_bind_int64(stmt, kDeadline + 1, record.deadline_us);
  sqlite::BindText(stmt, kReason + 1, record.reason);
  for (int i = 0; i < 6; ++i) sqlite::BindText(stmt, kRequester + 1 + i, save.documents[i]);
  sqlite::BindText(stmt, kTenantParam, save.tenant);
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return sqlite::Error(writer_db_.get(), "saving request " + record.id);
  }
  if (sqlite3_changes(writer_db_.get()) != 1) return false;
  if (save.outbox != nullptr) AIRLOCK_RETURN_IF_ERROR(InsertOutbox(*save.outbox));
  return true;
}

Status SqliteStateStoreImpl::InsertOutbox(const std::vector<OutboxMessage>& messages) {
  sqlite3_stmt* stmt = outbox_insert_.get();
  for (const OutboxMessage& m : messages) {
    sqlite::StmtScope scope(stmt);
    sqlite::BindText(stmt, 1, m.id);
    sqlite::BindText(stmt, 2, m.notifier);
    sqlite::BindText(stmt, 3, m.request_id);
    sqlite::BindText(stmt, 4, m.payload);
    sqlite3_bind_int64(stmt, 5, m.created_at_us);
    sqlite3_bind_int64(stmt, 6, m.next_attempt_at_us);
    sqlite3_bind_int64(stmt, 7, m.attempts);
    sqlite::BindText(stmt, 8, m.last_error);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      return sqlite::Error(writer_db_.get(), "queueing outbox message " + m.id);
    }
  }
  return Status::Ok();
}

Status SqliteStateStoreImpl::SelectDueOutbox(std::string_view notifier, int64_t now_us,
                                             size_t limit, std::vector<OutboxMessage>* out) {
  sqlite3_stmt* stmt = outbox_due_.get();
  sqlite::StmtScope scope(stmt);
  sqlite::BindText(stmt, 1, notifier);
  sqlite3_bind_int64(stmt, 2, now_us);
  sqlite3_bind_int64(stmt, 3, static_cast<int64_t>(limit));
  while (true) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return Status::Ok();
    if (rc != SQLITE_ROW) return sqlite::Error(writer_db_.get(), "reading the outbox");
    AIRLOCK_ASSIGN_OR_RETURN(OutboxMessage message, RowToOutbox(stmt));
    out->push_back(std::move(message));
  }
}

Status SqliteStateStoreImpl::ConflictFor(const RequestRecord& record) {
  if (record.version == 1) return SaveConflict(record, 1);
  sqlite3_stmt* stmt = version_of_.get();
  sqlite::StmtScope scope(stmt);
  sqlite::BindText(stmt, 1, record.id);
  if (sqlite3_step(stmt) != SQLITE_ROW) return SaveConflict(record, std::nullopt);
  return SaveConflict(record, sqlite3_column_int64(stmt, 0));
}

Result<std::optional<RequestRecord>> SqliteStateStoreImpl::Load(std::string_view id) {
  return LoadRow<RequestRecord>(id, RowToRecord);
}

// The documents are returned as stored: Save wrote them with dump(), so
// they need no parsing to be passed on. Served from the text cache when it
// has the id; a miss reads the row and fills it.
Result<std::shared_ptr<const StoredRequestText>> SqliteStateStoreImpl::LoadText(
    std::string_view id) {
  if (auto cached = text_cache_.Find(id)) return cached;
  const uint64_t generation = text_cache_.generation();
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<StoredRequestText> row,
                           LoadRow<StoredRequestText>(id, RowToText));
  if (!row) return std::shared_ptr<const StoredRequestText>();
  auto text = std::make_shared<const StoredRequestText>(std::move(*row));
  text_cache_.Fill(text, generation);
  return text;
}

Result<RequestPage> SqliteStateStoreImpl::List(const RequestFilter& filter) {
  if (filter.limit == 0) return Status::InvalidArgument("list limit must be at least 1");
  const size_t limit = std::min(filter.limit, kMaxListLimit);
  std::optional<PageCursor> cursor;
  if (!filter.page_token.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(cursor, DecodePageToken(filter.page_token));
  }
  const int variant = (filter.state ? 1 : 0) | (filter.requester_subject ? 2 : 0) |
                      (cursor ? 4 : 0) | (filter.tenant ? 8 : 0);

  Lease reader = AcquireReader();
  sqlite3* db = reader->db.get();
  sqlite::Stmt& slot = reader->list[variant];
  if (!slot) {
    AIRLOCK_ASSIGN_OR_RETURN(slot, sqlite::Prepare(db, ListSql(variant)));
  }
  sqlite3_stmt* stmt = slot.get();
  sqlite::StmtScope scope(stmt);
  auto param = [&](const char* name) { return sqlite3_bind_parameter_index(stmt, name); };
  if (filter.state) sqlite::BindText(stmt, param(":state"), RequestStateName(*filter.state));
  if (filter.requester_subject) {
    sqlite::BindText(stmt, param(":requester"), *filter.requester_subject);
  }
  if (filter.tenant) sqlite::BindText(stmt, param(":tenant"), *filter.tenant);
  if (cursor) {
    sqlite3_bind_int64(stmt, param(":created"), cursor->created_at_us);
    sqlite::BindText(stmt, param(":after_id"), cursor->id);
  }
  // One extra row tells whether another page follows.
  sqlite3_bind_int64(stmt, param(":limit"), static_cast<int64_t>(limit) + 1);

  RequestPage page;
  AIRLOCK_RETURN_IF_ERROR(CollectRows(db, stmt, &page.records));
  if (page.records.size() > limit) {
    page.records.resize(limit);
    const RequestRecord& last = page.records.back();
    page.next_page_token = EncodePageToken(PageCursor{last.created_at_us, last.id});
  }
  return page;
}

Result<std::vector<RequestRecord>> SqliteStateStoreImpl::LoadActive() {
  Lease reader = AcquireReader();
  sqlite3_stmt* stmt = reader->active.get();
  sqlite::StmtScope scope(stmt);
  std::vector<RequestRecord> records;
  AIRLOCK_RETURN_IF_ERROR(CollectRows(reader->db.get(), stmt, &records));
  return records;
}

int64_t WallMicrosNow() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<int64_t> SqliteStateStoreImpl::AcquireLease(const ReplicaHeartbeat& beat) {
  AIRLOCK_RETURN_IF_ERROR(ValidateHeartbeat(beat));
  std::lock_guard lock(replicas_mu_);
  ReplicaStatus& status = replicas_[beat.replica_id];
  status.replica_id = beat.replica_id;
  status.version = beat.version;
  status.api_url = beat.api_url;
  status.started_at_us = beat.started_at_us;
  status.last_heartbeat_us = WallMicrosNow();
  return ++status.lease_epoch;
}

Status SqliteStateStoreImpl::RecordHeartbeat(const ReplicaHeartbeat& beat) {
  AIRLOCK_RETURN_IF_ERROR(ValidateHeartbeat(beat));
  std::lock_guard lock(replicas_mu_);
  auto it = replicas_.find(beat.replica_id);
  if (it == replicas_.end() || it->second.lease_epoch != beat.lease_epoch) {
    return LeaseLost(beat.replica_id, beat.lease_epoch);
  }
  ReplicaStatus& status = it->second;
  status.version = beat.version;
  status.api_url = beat.api_url;
  status.last_heartbeat_us = WallMicrosNow();
  return Status::Ok();
}

Result<bool> SqliteStateStoreImpl::FenceReplica(std::string_view replica_id, int64_t lease_epoch,
                                                int64_t stale_after_us) {
  std::lock_guard lock(replicas_mu_);
  auto it = replicas_.find(std::string(replica_id));
  if (it == replicas_.end() || it->second.lease_epoch != lease_epoch ||
      WallMicrosNow() - it->second.last_heartbeat_us < stale_after_us) {
    return false;
  }
  ++it->second.lease_epoch;
  return true;
}

Status SqliteStateStoreImpl::ReleaseLease(std::string_view replica_id, int64_t lease_epoch) {
  std::lock_guard lock(replicas_mu_);
  auto it = replicas_.find(std::string(replica_id));
  if (it != replicas_.end() && it->second.lease_epoch == lease_epoch) {
    it->second.last_heartbeat_us = 0;
  }
  return Status::Ok();
}

Result<std::vector<ReplicaStatus>> SqliteStateStoreImpl::ListReplicas() {
  std::vector<ReplicaStatus> out;
  const int64_t now = WallMicrosNow();
  std::lock_guard lock(replicas_mu_);
  for (const auto& [id, status] : replicas_) {
    out.push_back(status);
    out.back().now_us = now;
  }
  return out;
}

Status SqliteStateStoreImpl::RecordAgentLinks(std::string_view replica_id,
                                              const std::vector<std::string>& held,
                                              const std::vector<std::string>& claimed) {
  AIRLOCK_RETURN_IF_ERROR(ValidateAgentLinks(replica_id, held, claimed));
  const int64_t now = WallMicrosNow();
  const std::set<std::string> held_set(held.begin(), held.end());
  std::lock_guard lock(replicas_mu_);
  for (auto it = agent_links_.begin(); it != agent_links_.end();) {
    const bool dropped = it->second.replica_id == replica_id && held_set.count(it->first) == 0;
    it = dropped ? agent_links_.erase(it) : std::next(it);
  }
  for (const std::string& agent : claimed) {
    agent_links_[agent] = {agent, std::string(replica_id), now};
  }
  for (const std::string& agent : held) {
    agent_links_.try_emplace(agent, AgentLink{agent, std::string(replica_id), now});
  }
  return Status::Ok();
}

Result<std::vector<AgentLink>> SqliteStateStoreImpl::ListAgentLinks() {
  std::lock_guard lock(replicas_mu_);
  std::vector<AgentLink> out;
  for (const auto& [agent, link] : agent_links_) out.push_back(link);
  return out;
}

// Suspensions are rare administrative acts: their statements are prepared
// when used rather than kept.
Result<bool> SqliteStateStoreImpl::SuspendSite(const SiteSuspension& suspension) {
  AIRLOCK_RETURN_IF_ERROR(ValidateSiteSuspension(suspension));
  bool stored = false;
  AIRLOCK_RETURN_IF_ERROR(RunOnWriter([&]() -> Status {
    AIRLOCK_ASSIGN_OR_RETURN(
        sqlite::Stmt stmt,
        sqlite::Prepare(writer_db_.get(),
                        "INSERT INTO site_suspensions (agent, reason, suspended_by, since_us) "
                        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (agent) DO NOTHING"));
    sqlite::BindText(stmt.get(), 1, suspension.agent);
    sqlite::BindText(stmt.get(), 2, suspension.reason);
    sqlite::BindText(stmt.get(), 3, suspension.by);
    sqlite3_bind_int64(stmt.get(), 4, suspension.since_us);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) {
      return sqlite::Error(writer_db_.get(), "suspending site " + suspension.agent);
    }
    stored = sqlite3_changes64(writer_db_.get()) == 1;
    return Status::Ok();
  }));
  return stored;
}

Result<bool> SqliteStateStoreImpl::ResumeSite(std::string_view agent) {
  bool resumed = false;
  AIRLOCK_RETURN_IF_ERROR(RunOnWriter([&]() -> Status {
    AIRLOCK_ASSIGN_OR_RETURN(
        sqlite::Stmt stmt,
        sqlite::Prepare(writer_db_.get(), "DELETE FROM site_suspensions WHERE agent = ?1"));
    sqlite::BindText(stmt.get(), 1, agent);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) {
      return sqlite::Error(writer_db_.get(), "resuming site " + std::string(agent));
    }
    resumed = sqlite3_changes64(writer_db_.get()) == 1;
    return Status::Ok();
  }));
  return resumed;
}

Result<std::vector<SiteSuspension>> SqliteStateStoreImpl::ListSiteSuspensions() {
  Lease reader = AcquireReader();
  AIRLOCK_ASSIGN_OR_RETURN(
      sqlite::Stmt stmt,
      sqlite::Prepare(reader->db.get(),
                      "SELECT agent, reason, suspended_by, since_us FROM site_suspensions "
                      "ORDER BY agent"));
  std::vector<SiteSuspension> out;
  while (true) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return sqlite::Error(reader->db.get(), "listing suspended sites");
    out.push_back({std::string(sqlite::ColumnText(stmt.get(), 0)),
                   std::string(sqlite::ColumnText(stmt.get(), 1)),
                   std::string(sqlite::ColumnText(stmt.get(), 2)),
                   sqlite3_column_int64(stmt.get(), 3)});
  }
}

Status SqliteStateStoreImpl::RecordSiteCatalog(const StoredSiteCatalog& catalog) {
  AIRLOCK_RETURN_IF_ERROR(ValidateSiteCatalog(catalog));
  return RunOnWriter([&]() -> Status {
    AIRLOCK_ASSIGN_OR_RETURN(
        sqlite::Stmt stmt,
        sqlite::Prepare(writer_db_.get(),
                        "INSERT INTO site_catalogs (agent, datasets, received_at_us) VALUES (?1, "
                        "?2, ?3) ON CONFLICT (agent) DO UPDATE SET datasets = excluded.datasets, "
                        "received_at_us = excluded.received_at_us WHERE excluded.received_at_us "
                        ">= site_catalogs.received_at_us"));
    sqlite::BindText(stmt.get(), 1, catalog.agent);
    sqlite::BindText(stmt.get(), 2, catalog.datasets_json);
    sqlite3_bind_int64(stmt.get(), 3, catalog.received_at_us);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) {
      return sqlite::Error(writer_db_.get(), "recording the catalog of site " + catalog.agent);
    }
    return Status::Ok();
  });
}

Result<std::vector<StoredSiteCatalog>> SqliteStateStoreImpl::ListSiteCatalogs() {
  Lease reader = AcquireReader();
  AIRLOCK_ASSIGN_OR_RETURN(
      sqlite::Stmt stmt,
      sqlite::Prepare(reader->db.get(),
                      "SELECT agent, datasets, received_at_us FROM site_catalogs ORDER BY agent"));
  std::vector<StoredSiteCatalog> out;
  while (true) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return sqlite::Error(reader->db.get(), "listing site catalogs");
    out.push_back({std::string(sqlite::ColumnText(stmt.get(), 0)),
                   std::string(sqlite::ColumnText(stmt.get(), 1)),
                   sqlite3_column_int64(stmt.get(), 2)});
  }
}

Status SqliteStateStoreImpl::EnqueueOutbox(const std::vector<OutboxMessage>& messages) {
  AIRLOCK_RETURN_IF_ERROR(ValidateOutbox(messages));
  if (messages.empty()) return Status::Ok();
  return RunOnWriter([&] { return InsertOutbox(messages); });
}

// Claims are rows like the rest: the writer selects and marks them in one
// transaction, so no other claim (nor a settle) can come between.
Result<std::vector<OutboxMessage>> SqliteStateStoreImpl::ClaimOutbox(std::string_view notifier,
                                                                     std::string_view claimer,
                                                                     int64_t now_us,
                                                                     int64_t lease_us,
                                                                     size_t limit) {
  AIRLOCK_RETURN_IF_ERROR(ValidateOutboxClaim(notifier, claimer, lease_us, limit));
  const int64_t until = OutboxClaimUntil(now_us, lease_us);
  std::vector<OutboxMessage> claimed;
  AIRLOCK_RETURN_IF_ERROR(RunOnWriter([&]() -> Status {
    AIRLOCK_RETURN_IF_ERROR(SelectDueOutbox(notifier, now_us, limit, &claimed));
    sqlite3_stmt* stmt = outbox_claim_.get();
    for (const OutboxMessage& message : claimed) {
      sqlite::StmtScope scope(stmt);
      sqlite::BindText(stmt, 1, message.id);
      sqlite::BindText(stmt, 2, claimer);
      sqlite3_bind_int64(stmt, 3, until);
      if (sqlite3_step(stmt) != SQLITE_DONE) {
        return sqlite::Error(writer_db_.get(), "claiming outbox message " + message.id);
      }
    }
    return Status::Ok();
  }));
  return claimed;
}

Result<bool> SqliteStateStoreImpl::SettleOutbox(std::string_view id, std::string_view claimer,
                                                OutboxOutcome outcome, int64_t next_attempt_at_us,
                                                std::string_view error, int64_t now_us) {
  if (!CouldHoldOutboxClaim(id, claimer)) return false;
  const OutboxSettlement settlement = SettlementOf(outcome, next_attempt_at_us, now_us);
  const std::string error_text = OutboxErrorText(error);
  bool settled = false;
  AIRLOCK_RETURN_IF_ERROR(RunOnWriter([&]() -> Status {
    sqlite3_stmt* stmt = outbox_settle_.get();
    sqlite::StmtScope scope(stmt);
    sqlite::BindText(stmt, 1, id);
    sqlite::BindText(stmt, 2, claimer);
    sqlite::BindText(stmt, 3, OutboxStatusName(settlement.status));
    sqlite::BindText(stmt, 4, error_text);
    sqlite3_bind_int64(stmt, 5, settlement.settled_at_us);
    if (settlement.next_attempt_at_us) sqlite3_bind_int64(stmt, 6, *settlement.next_attempt_at_us);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      return sqlite::Error(writer_db_.get(), "settling an outbox message");
    }
    settled = sqlite3_changes(writer_db_.get()) == 1;
    return Status::Ok();
  }));
  return settled;
}

Result<std::optional<OutboxMessage>> SqliteStateStoreImpl::LoadOutbox(std::string_view id) {
  if (id.empty() || id.size() > kMaxOutboxIdBytes) return std::optional<OutboxMessage>();
  Lease reader = AcquireReader();
  sqlite3_stmt* stmt = reader->outbox_load.get();
  sqlite::StmtScope scope(stmt);
  sqlite::BindText(stmt, 1, id);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<OutboxMessage>();
  if (rc != SQLITE_ROW) return sqlite::Error(reader->db.get(), "loading an outbox message");
  AIRLOCK_ASSIGN_OR_RETURN(OutboxMessage message, RowToOutbox(stmt));
  return std::optional<OutboxMessage>(std::move(message));
}

Result<OutboxCounts> SqliteStateStoreImpl::CountOutbox(std::string_view notifier) {
  Lease reader = AcquireReader();
  sqlite3_stmt* stmt =
      notifier.empty() ? reader->outbox_count_all.get() : reader->outbox_count_one.get();
  sqlite::StmtScope scope(stmt);
  if (!notifier.empty()) sqlite::BindText(stmt, 1, notifier);
  OutboxCounts counts;
  while (true) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return counts;
    if (rc != SQLITE_ROW) return sqlite::Error(reader->db.get(), "counting the outbox");
    AddOutboxCount(sqlite::ColumnText(stmt, 0), sqlite3_column_int64(stmt, 1), &counts);
  }
}

Result<size_t> SqliteStateStoreImpl::PurgeOutbox(int64_t before_us) {
  size_t purged = 0;
  AIRLOCK_RETURN_IF_ERROR(RunOnWriter([&]() -> Status {
    sqlite3_stmt* stmt = outbox_purge_.get();
    sqlite::StmtScope scope(stmt);
    sqlite3_bind_int64(stmt, 1, before_us);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      return sqlite::Error(writer_db_.get(), "purging the outbox");
    }
    purged = static_cast<size_t>(sqlite3_changes64(writer_db_.get()));
    return Status::Ok();
  }));
  return purged;
}

Result<size_t> SqliteStateStoreImpl::ReleaseOutboxClaims(std::string_view claimer) {
  size_t released = 0;
  AIRLOCK_RETURN_IF_ERROR(RunOnWriter([&]() -> Status {
    sqlite3_stmt* stmt = outbox_release_.get();
    sqlite::StmtScope scope(stmt);
    sqlite::BindText(stmt, 1, claimer);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      return sqlite::Error(writer_db_.get(), "releasing outbox claims");
    }
    released = static_cast<size_t>(sqlite3_changes64(writer_db_.get()));
    return Status::Ok();
  }));
  return released;
}

}  // namespace

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(const std::string& path,
                                                                 SqliteStateStoreOptions options) {
  if (path.empty()) return Status::InvalidArgument("state store path is empty");
  if (options.checkpoint_pages < 1) {
    return Status::InvalidArgument("state store checkpoint_pages must be at least 1");
  }
  auto store = std::make_unique<SqliteStateStoreImpl>(path, options);
  AIRLOCK_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<SqliteStateStore>(std::move(store));
}

Result<std::unique_ptr<StateStore>> OpenSqliteStateStore(const std::string& path,
                                                         SqliteStateStoreOptions options) {
  AIRLOCK_ASSIGN_OR_RETURN(auto store, SqliteStateStore::Open(path, options));
  return std::unique_ptr<StateStore>(std::move(store));
}

}  // namespace airlock
