#include "kernel/state/sqlite_state_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/kernel/state/state_test_records.h"
#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using ScratchDir = ::airlock::test::TempDir;
using test::ExpectSameRecord;
using test::ExpectSameText;
using test::FullRecord;
using test::LoadOrDie;
using test::MakeRecord;

std::unique_ptr<SqliteStateStore> OpenOrDie(const std::string& path,
                                            SqliteStateStoreOptions options = {}) {
  auto store = SqliteStateStore::Open(path, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

// The round trip itself is in the backend suite (state_store_contract_test).
TEST(SqliteStateStoreTest, SaveThenLoadRoundTripsEveryField) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  auto store = OpenOrDie(path);
  ASSERT_TRUE(store);
  const RequestRecord record = FullRecord();
  ASSERT_TRUE(store->Save(record).ok());
  ExpectSameRecord(LoadOrDie(*store, record.id), record);

  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

// LoadText is served from memory after a save; it must follow every save,
// keep the creation time of the insert (as the row does) and agree with
// what a fresh store reads from the file.
TEST(SqliteStateStoreTest, LoadTextFollowsEverySaveAndAgreesWithTheFile) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  RequestRecord record = FullRecord();
  std::shared_ptr<const StoredRequestText> updated;
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Save(record).ok());
    auto first = store->LoadText(record.id);
    ASSERT_TRUE(first.ok() && *first != nullptr);
    EXPECT_EQ((*first)->version, 1);

    RequestRecord next = record;
    next.version = 2;
    next.state = RequestState::kApproved;
    next.reason = "approved by bob";
    next.approvals = nlohmann::json::array({{{"approver", "bob"}}});
    next.created_at_us = record.created_at_us + 12345;  // an update keeps the stored one
    ASSERT_TRUE(store->Save(next).ok());
    auto second = store->LoadText(record.id);
    ASSERT_TRUE(second.ok() && *second != nullptr);
    updated = *second;
    EXPECT_EQ(updated->version, 2);
    EXPECT_EQ(updated->state, RequestState::kApproved);
    EXPECT_EQ(updated->reason, "approved by bob");
    EXPECT_EQ(updated->approvals, next.approvals.dump());
    EXPECT_EQ(updated->created_at_us, record.created_at_us);
    // The earlier snapshot is immutable: a reader holding it is unaffected.
    EXPECT_EQ((*first)->version, 1);
    EXPECT_EQ((*first)->state, record.state);

    // A conflicting save changes nothing, in the file or in memory.
    ASSERT_EQ(store->Save(next).code(), StatusCode::kConflict);
    auto after_conflict = store->LoadText(record.id);
    ASSERT_TRUE(after_conflict.ok());
    EXPECT_EQ(*after_conflict, updated);
  }
  auto reopened = SqliteStateStore::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto from_file = (*reopened)->LoadText(record.id);
  ASSERT_TRUE(from_file.ok() && *from_file != nullptr);
  ExpectSameText(**from_file, *updated);
}

// With room for one request, saves evict each other; an update of an evicted
// request is read back from the file with its stored creation time.
TEST(SqliteStateStoreTest, LoadTextIsRightForRequestsTheCacheHasNoRoomFor) {
  ScratchDir dir;
  SqliteStateStoreOptions options;
  options.text_cache_entries = 1;
  auto store = OpenOrDie(dir.File("state.db"), options);
  ASSERT_TRUE(store);
  RequestRecord a = MakeRecord("a", 1);
  const RequestRecord b = MakeRecord("b", 2);
  ASSERT_TRUE(store->Save(a).ok());
  ASSERT_TRUE(store->Save(b).ok());
  const int64_t created = a.created_at_us;
  a.version = 2;
  a.state = RequestState::kDenied;
  a.created_at_us = created + 1;
  ASSERT_TRUE(store->Save(a).ok());
  for (const char* id : {"a", "b", "a"}) {
    auto text = store->LoadText(id);
    ASSERT_TRUE(text.ok() && *text != nullptr) << id;
    EXPECT_EQ((*text)->version, std::string(id) == "a" ? 2 : 1) << id;
  }
  auto text = store->LoadText("a");
  ASSERT_TRUE(text.ok() && *text != nullptr);
  EXPECT_EQ((*text)->state, RequestState::kDenied);
  EXPECT_EQ((*text)->created_at_us, created);
}

// The store keeps requests in memory on the assumption that it is the
// file's only writer: a second store on the same file is refused.
TEST(SqliteStateStoreTest, ASecondStoreOnTheSameFileIsRefusedWhileTheFirstIsOpen) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  {
    auto first = OpenOrDie(path);
    ASSERT_TRUE(first);
    auto second = SqliteStateStore::Open(path);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(second.status().message().find("state.db.lock"), std::string::npos)
        << second.status().message();
  }
  EXPECT_TRUE(OpenOrDie(path));  // released with the first store
}

// Commits never checkpoint (the hook replaces SQLite's automatic checkpoint);
// the writer must, between commits, or the log grows with every commit. 600
// one-record commits write well over 600 log pages.
TEST(SqliteStateStoreTest, CheckpointsBetweenCommitsKeepTheWalBounded) {
  ScratchDir dir;
  SqliteStateStoreOptions options;
  options.checkpoint_pages = 64;
  auto store = OpenOrDie(dir.File("state.db"), options);
  ASSERT_TRUE(store);
  RequestRecord record = FullRecord();
  constexpr int kSaves = 600;
  for (int i = 0; i < kSaves; ++i) {
    record.id = "req-" + std::to_string(i);
    ASSERT_TRUE(store->Save(record).ok());
  }
  EXPECT_GT(store->checkpoint_count(), 0u);
  const auto wal_bytes = std::filesystem::file_size(dir.File("state.db-wal"));
  EXPECT_LT(wal_bytes, uint64_t{kSaves} * 4096) << "the log was never checkpointed";
  // Everything is still there, in the database or the log.
  for (int i = 0; i < kSaves; i += 97) {
    EXPECT_EQ(LoadOrDie(*store, "req-" + std::to_string(i)).reason, record.reason);
  }
}

int QueryInt(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int value = -1;
  if (sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

TEST(SqliteStateStoreTest, ReopenKeepsEverythingAndUsesWalWithSchemaVersion) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  RequestRecord record = FullRecord();
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Save(record).ok());
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(store->Save(MakeRecord("x" + std::to_string(i), i)).ok());
  }
  EXPECT_EQ(QueryInt(path, "SELECT max(version) FROM schema_version"), 5);
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM requests"), 11);
  EXPECT_EQ(QueryInt(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);

  auto reopened = OpenSqliteStateStore(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  StateStore& store = **reopened;
  ExpectSameRecord(LoadOrDie(store, record.id), record);
  record.version = 2;
  record.state = RequestState::kApproved;
  ASSERT_TRUE(store.Save(record).ok());
  ExpectSameRecord(LoadOrDie(store, record.id), record);
  RequestFilter filter;
  auto page = store.List(filter);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 11u);
}

TEST(SqliteStateStoreTest, OpenMigratesANewFileAndLeavesACurrentOneAsItIs) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->migration().from_version, 0);
    EXPECT_EQ(store->migration().to_version, 5);
  }
  auto store = OpenOrDie(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->migration().from_version, 5);
  EXPECT_EQ(store->migration().to_version, 5);
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM schema_version"), 5);
}

// Makes the file at `path` what a kernel of schema version 4 left: the
// requests without their tenant column.
void RevertToVersionFour(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX requests_by_tenant; ALTER TABLE requests DROP COLUMN tenant; "
                         "DELETE FROM schema_version WHERE version >= 5",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  ASSERT_EQ(QueryInt(path,
                     "SELECT count(*) FROM pragma_table_info('requests') "
                     "WHERE name = 'tenant'"),
            0);
}

// A file of the first schema (requests only) gains the outbox, the site
// suspensions and catalogs, and the tenant column, and keeps its requests.
TEST(SqliteStateStoreTest, OpenMigratesAVersionOneFileToTheOutbox) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  const RequestRecord record = FullRecord();
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Save(record).ok());
  }
  RevertToVersionFour(path);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE notification_outbox; DROP TABLE site_suspensions; DROP TABLE "
                         "site_catalogs; DELETE FROM schema_version WHERE version >= 2",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ASSERT_EQ(QueryInt(path, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'notification%'"),
            0);

  auto store = OpenOrDie(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->migration().from_version, 1);
  EXPECT_EQ(store->migration().to_version, 5);
  ExpectSameRecord(LoadOrDie(*store, record.id), record);
  ASSERT_TRUE(store->EnqueueOutbox({test::MakeMessage("m", "hook", 0)}).ok());
  auto counts = store->CountOutbox("hook");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->pending, 1);
  auto suspended = store->SuspendSite({"west", "audit", "root", 1});
  ASSERT_TRUE(suspended.ok()) << suspended.status().ToString();
  EXPECT_TRUE(*suspended);
}

// A file of version 4 gains the tenant column with every request's tenant
// taken from its requester document: a string "tenant", else "".
TEST(SqliteStateStoreTest, OpenBackfillsTheTenantOfRequestsSavedBeforeTheColumn) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  {
    auto store = OpenOrDie(path);
    ASSERT_TRUE(store);
    test::SaveRequestsOfEveryTenantShape(*store);
  }
  RevertToVersionFour(path);

  auto store = OpenOrDie(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->migration().from_version, 4);
  EXPECT_EQ(store->migration().to_version, 5);
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM sqlite_master WHERE name = 'requests_by_tenant'"),
            1);
  test::ExpectTenantsBackfilled(*store);
}

// A process killed (SIGKILL) right after its save returned leaves the
// record and its queued messages in the file.
TEST(SqliteStateStoreTest, SavedMessagesSurviveTheProcessBeingKilled) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = SqliteStateStore::Open(path);
    const bool saved =
        store.ok() &&
        (*store)
            ->SaveWithOutbox(MakeRecord("r1", 1), {test::MakeMessage("r1/a", "hook", 0),
                                                   test::MakeMessage("r1/b", "mail", 0)})
            .ok() &&
        (*store)->EnqueueOutbox({test::MakeMessage("alone", "hook", 0)}).ok();
    if (!saved) ::_exit(1);
    ::kill(::getpid(), SIGKILL);
    ::_exit(2);  // not reached
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wait_status))
      << "the child could not save (exit " << WEXITSTATUS(wait_status) << ")";
  EXPECT_EQ(WTERMSIG(wait_status), SIGKILL);

  auto store = OpenOrDie(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(LoadOrDie(*store, "r1").version, 1);
  auto hook = store->CountOutbox("hook");
  ASSERT_TRUE(hook.ok());
  EXPECT_EQ(hook->pending, 2);
  auto mail = store->CountOutbox("mail");
  ASSERT_TRUE(mail.ok());
  EXPECT_EQ(mail->pending, 1);
}

TEST(SqliteStateStoreTest, RefusesANewerSchema) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  { ASSERT_TRUE(OpenOrDie(path)); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenSqliteStateStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("99"), std::string::npos) << store.status().message();
}

TEST(SqliteStateStoreTest, OpenFailsOnAnUnusablePath) {
  ScratchDir dir;
  auto store = OpenSqliteStateStore(dir.File("missing-dir/state.db"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace airlock
