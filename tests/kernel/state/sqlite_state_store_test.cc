#include "kernel/state/sqlite_state_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using ScratchDir = ::airlock::test::TempDir;

RequestRecord MakeRecord(const std::string& id, int64_t created_at_us,
                         const std::string& subject = "alice",
                         RequestState state = RequestState::kSubmitted) {
  RequestRecord record;
  record.id = id;
  record.state = state;
  record.version = 1;
  record.requester = {{"subject", subject}, {"kind", "user"}};
  record.created_at_us = created_at_us;
  record.updated_at_us = created_at_us;
  return record;
}

void ExpectSameRecord(const RequestRecord& actual, const RequestRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.state, expected.state);
  EXPECT_EQ(actual.version, expected.version);
  EXPECT_EQ(actual.requester, expected.requester);
  EXPECT_EQ(actual.request, expected.request);
  EXPECT_EQ(actual.decision, expected.decision);
  EXPECT_EQ(actual.approvals, expected.approvals);
  EXPECT_EQ(actual.enclave, expected.enclave);
  EXPECT_EQ(actual.tunnel, expected.tunnel);
  EXPECT_EQ(actual.reason, expected.reason);
  EXPECT_EQ(actual.created_at_us, expected.created_at_us);
  EXPECT_EQ(actual.updated_at_us, expected.updated_at_us);
  EXPECT_EQ(actual.deadline_us, expected.deadline_us);
}

RequestRecord FullRecord() {
  RequestRecord record;
  record.id = "req-0001";
  record.state = RequestState::kPendingApproval;
  record.version = 1;
  record.requester = {
      {"subject", "alice@example.com"}, {"kind", "user"}, {"groups", {"analysts", "eu"}}};
  record.request = {{"datasets", {{{"source", "pg-main"}, {"name", "orders"}}}},
                    {"window", {{"minutes", 90}}},
                    {"purpose", "quarterly \"churn\" review \xe2\x80\x94 caf\xc3\xa9"},
                    {"mode", "interactive"},
                    {"queries", nlohmann::json::array()}};
  record.decision = {{"outcome", "needs_approval"}, {"score", 0.25}, {"rules", {"r1", "r2"}}};
  record.approvals = nlohmann::json::array(
      {{{"subject", "bob"}, {"at", 1718000000000000}, {"comment", "ok\nfine"}}});
  record.enclave = {{"isolator", "process"}, {"isolation", "namespaces"}, {"progress", 0.5}};
  record.tunnel = {{"transport", "https"}, {"url", "https://127.0.0.1:8443/t/abc"}};
  record.reason = "awaiting approval from data owner";
  record.created_at_us = 1718000000123456;
  record.updated_at_us = 1718000000999999;
  record.deadline_us = 1718003600123456;
  return record;
}

std::unique_ptr<SqliteStateStore> OpenOrDie(const std::string& path,
                                            SqliteStateStoreOptions options = {}) {
  auto store = SqliteStateStore::Open(path, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

RequestRecord LoadOrDie(StateStore& store, const std::string& id) {
  auto loaded = store.Load(id);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  if (!loaded.ok() || !loaded->has_value()) {
    ADD_FAILURE() << "request " << id << " not found";
    return {};
  }
  return **loaded;
}

// Every stored field of two text snapshots agrees.
void ExpectSameText(const StoredRequestText& got, const StoredRequestText& want) {
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.requester_subject, want.requester_subject);
  const std::string StoredRequestText::*documents[] = {
      &StoredRequestText::requester, &StoredRequestText::request, &StoredRequestText::decision,
      &StoredRequestText::approvals, &StoredRequestText::enclave, &StoredRequestText::tunnel,
      &StoredRequestText::reason};
  for (const auto document : documents) EXPECT_EQ(got.*document, want.*document);
  EXPECT_EQ(got.created_at_us, want.created_at_us);
  EXPECT_EQ(got.updated_at_us, want.updated_at_us);
  EXPECT_EQ(got.deadline_us, want.deadline_us);
}

TEST(SqliteStateStoreTest, SaveThenLoadRoundTripsEveryField) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  auto store = OpenOrDie(path);
  ASSERT_TRUE(store);
  const RequestRecord record = FullRecord();
  ASSERT_TRUE(store->Save(record).ok());
  ExpectSameRecord(LoadOrDie(*store, record.id), record);

  auto missing = store->Load("req-none");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST(SqliteStateStoreTest, LoadTextGivesTheStoredDocumentsAsTheirSerialisation) {
  ScratchDir dir;
  auto store = OpenOrDie(dir.File("state.db"));
  ASSERT_TRUE(store);
  const RequestRecord record = FullRecord();
  ASSERT_TRUE(store->Save(record).ok());
  auto text = store->LoadText(record.id);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  ASSERT_NE(*text, nullptr);
  const StoredRequestText& t = **text;
  EXPECT_EQ(t.id, record.id);
  EXPECT_EQ(t.state, record.state);
  EXPECT_EQ(t.version, record.version);
  EXPECT_EQ(t.requester_subject, "alice@example.com");
  EXPECT_EQ(t.requester, record.requester.dump());
  EXPECT_EQ(t.request, record.request.dump());
  EXPECT_EQ(t.decision, record.decision.dump());
  EXPECT_EQ(t.approvals, record.approvals.dump());
  EXPECT_EQ(t.enclave, record.enclave.dump());
  EXPECT_EQ(t.tunnel, record.tunnel.dump());
  EXPECT_EQ(t.reason, record.reason);
  EXPECT_EQ(t.created_at_us, record.created_at_us);
  EXPECT_EQ(t.updated_at_us, record.updated_at_us);
  EXPECT_EQ(t.deadline_us, record.deadline_us);

  // The interface's default (load, then serialise) agrees field for field.
  auto fallback = store->StateStore::LoadText(record.id);
  ASSERT_TRUE(fallback.ok() && *fallback != nullptr);
  EXPECT_EQ((*fallback)->requester, t.requester);
  EXPECT_EQ((*fallback)->request, t.request);
  EXPECT_EQ((*fallback)->decision, t.decision);
  EXPECT_EQ((*fallback)->enclave, t.enclave);
  EXPECT_EQ((*fallback)->requester_subject, t.requester_subject);

  auto missing = store->LoadText("req-none");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, nullptr);
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

TEST(SqliteStateStoreTest, EnforcesVersionsWithConflict) {
  ScratchDir dir;
  auto store = OpenOrDie(dir.File("state.db"));
  ASSERT_TRUE(store);
  RequestRecord record = MakeRecord("r1", 100);
  ASSERT_TRUE(store->Save(record).ok());

  // A second insert of the same id.
  EXPECT_EQ(store->Save(record).code(), StatusCode::kConflict);
  // Skipping a version.
  RequestRecord skipped = record;
  skipped.version = 3;
  skipped.state = RequestState::kEvaluating;
  const Status skip = store->Save(skipped);
  EXPECT_EQ(skip.code(), StatusCode::kConflict);
  EXPECT_NE(skip.message().find("at version 1"), std::string::npos) << skip.message();
  EXPECT_EQ(LoadOrDie(*store, "r1").state, RequestState::kSubmitted);

  // The next version wins once; a stale writer of the same version loses.
  RequestRecord next = record;
  next.version = 2;
  next.state = RequestState::kEvaluating;
  next.updated_at_us = 200;
  next.created_at_us = 999;  // ignored: creation time is fixed by the insert
  ASSERT_TRUE(store->Save(next).ok());
  RequestRecord stale = next;
  stale.state = RequestState::kClosed;
  EXPECT_EQ(store->Save(stale).code(), StatusCode::kConflict);
  const RequestRecord stored = LoadOrDie(*store, "r1");
  EXPECT_EQ(stored.version, 2);
  EXPECT_EQ(stored.state, RequestState::kEvaluating);
  EXPECT_EQ(stored.updated_at_us, 200);
  EXPECT_EQ(stored.created_at_us, 100);

  // An update of a request that does not exist.
  RequestRecord ghost = MakeRecord("ghost", 1);
  ghost.version = 2;
  EXPECT_EQ(store->Save(ghost).code(), StatusCode::kConflict);
  auto ghost_loaded = store->Load("ghost");
  ASSERT_TRUE(ghost_loaded.ok());
  EXPECT_FALSE(ghost_loaded->has_value());

  // Malformed saves never reach the database.
  RequestRecord zero = MakeRecord("z", 1);
  zero.version = 0;
  EXPECT_EQ(store->Save(zero).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Save(MakeRecord("", 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Save(MakeRecord(std::string(300, 'x'), 1)).code(), StatusCode::kInvalidArgument);
  RequestRecord bad_utf8 = MakeRecord("u", 1);
  bad_utf8.request = {{"purpose", "\xff\xfe"}};
  EXPECT_EQ(store->Save(bad_utf8).code(), StatusCode::kInvalidArgument);
}

TEST(SqliteStateStoreTest, ConcurrentSavesShareCommits) {
  ScratchDir dir;
  auto store = OpenOrDie(dir.File("state.db"));
  ASSERT_TRUE(store);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100;
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  std::atomic<int> read_errors{0};
  // A reader listing throughout: WAL readers run beside the writer.
  std::thread reader([&] {
    while (writing.load()) {
      RequestFilter filter;
      filter.limit = 5;
      if (!store->List(filter).ok()) ++read_errors;
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        RequestRecord record =
            MakeRecord("t" + std::to_string(t) + "-" + std::to_string(i), t * 1000 + i);
        if (!store->Save(record).ok()) ++failures;
        record.version = 2;
        record.state = RequestState::kEvaluating;
        if (!store->Save(record).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  writing = false;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(read_errors.load(), 0);
  constexpr uint64_t kSaves = 2 * kThreads * kPerThread;
  EXPECT_EQ(store->save_count(), kSaves);
  EXPECT_LT(store->commit_count(), kSaves) << "group commit never grouped";
  RecordProperty("commits", std::to_string(store->commit_count()));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; i += 17) {
      const RequestRecord loaded =
          LoadOrDie(*store, "t" + std::to_string(t) + "-" + std::to_string(i));
      EXPECT_EQ(loaded.version, 2);
      EXPECT_EQ(loaded.state, RequestState::kEvaluating);
    }
  }
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

TEST(SqliteStateStoreTest, ConflictingSaveFailsAloneInItsGroup) {
  ScratchDir dir;
  auto store = OpenOrDie(dir.File("state.db"));
  ASSERT_TRUE(store);
  constexpr int kThreads = 8;
  std::atomic<int> contested_wins{0};
  std::atomic<int> contested_conflicts{0};
  std::atomic<int> own_failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        const Status contested =
            store->Save(MakeRecord("contested-" + std::to_string(round), round));
        if (contested.ok()) ++contested_wins;
        if (contested.code() == StatusCode::kConflict) ++contested_conflicts;
        if (!store
                 ->Save(MakeRecord("own-" + std::to_string(t) + "-" + std::to_string(round), round))
                 .ok()) {
          ++own_failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(contested_wins.load(), 20);
  EXPECT_EQ(contested_conflicts.load(), 20 * (kThreads - 1));
  EXPECT_EQ(own_failures.load(), 0);
  RequestFilter all;
  all.limit = 1000;
  auto page = store->List(all);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 20u + 20u * kThreads);
}

std::vector<std::string> ListAllIds(StateStore& store, RequestFilter filter, size_t* pages) {
  std::vector<std::string> ids;
  *pages = 0;
  while (true) {
    auto page = store.List(filter);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    ++*pages;
    EXPECT_LE(page->records.size(), filter.limit);
    for (const auto& record : page->records) ids.push_back(record.id);
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
    if (*pages > 1000) {
      ADD_FAILURE() << "paging does not end";
      break;
    }
  }
  return ids;
}

class SqliteStateStoreListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(dir_.File("state.db"));
    ASSERT_TRUE(store_);
    const RequestState states[] = {RequestState::kSubmitted, RequestState::kPendingApproval,
                                   RequestState::kClosed};
    for (int i = 0; i < 30; ++i) {
      // Pairs share a creation time, so paging must break ties by id.
      RequestRecord record =
          MakeRecord("req-" + std::string(1, static_cast<char>('a' + i % 26)) + std::to_string(i),
                     1000 + i / 2, i % 2 == 0 ? "alice" : "bob", states[i % 3]);
      ASSERT_TRUE(store_->Save(record).ok());
      records_.push_back(record);
    }
  }

  // Expected ids for a predicate, newest first.
  std::vector<std::string> Expected(const std::function<bool(const RequestRecord&)>& keep) const {
    std::vector<RequestRecord> kept;
    for (const auto& record : records_) {
      if (keep(record)) kept.push_back(record);
    }
    std::sort(kept.begin(), kept.end(), [](const RequestRecord& a, const RequestRecord& b) {
      if (a.created_at_us != b.created_at_us) return a.created_at_us > b.created_at_us;
      return a.id > b.id;
    });
    std::vector<std::string> ids;
    for (const auto& record : kept) ids.push_back(record.id);
    return ids;
  }

  ScratchDir dir_;
  std::unique_ptr<SqliteStateStore> store_;
  std::vector<RequestRecord> records_;
};

TEST_F(SqliteStateStoreListTest, PagesThroughEverythingNewestFirstWithoutGapsOrDuplicates) {
  RequestFilter filter;
  filter.limit = 7;
  size_t pages = 0;
  const auto ids = ListAllIds(*store_, filter, &pages);
  EXPECT_EQ(ids, Expected([](const RequestRecord&) { return true; }));
  EXPECT_EQ(pages, 5u);  // 7 + 7 + 7 + 7 + 2
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());

  // An exact multiple of the limit ends without an empty extra page.
  filter.limit = 10;
  ListAllIds(*store_, filter, &pages);
  EXPECT_EQ(pages, 3u);
}

TEST_F(SqliteStateStoreListTest, FiltersByStateAndRequester) {
  RequestFilter filter;
  filter.limit = 4;
  size_t pages = 0;
  filter.state = RequestState::kPendingApproval;
  EXPECT_EQ(ListAllIds(*store_, filter, &pages), Expected([](const RequestRecord& r) {
              return r.state == RequestState::kPendingApproval;
            }));

  filter.state.reset();
  filter.requester_subject = "bob";
  EXPECT_EQ(ListAllIds(*store_, filter, &pages),
            Expected([](const RequestRecord& r) { return r.requester_subject() == "bob"; }));

  filter.state = RequestState::kClosed;
  const auto both = ListAllIds(*store_, filter, &pages);
  EXPECT_EQ(both, Expected([](const RequestRecord& r) {
              return r.requester_subject() == "bob" && r.state == RequestState::kClosed;
            }));
  EXPECT_FALSE(both.empty());

  filter.requester_subject = "nobody";
  EXPECT_TRUE(ListAllIds(*store_, filter, &pages).empty());
  EXPECT_EQ(pages, 1u);
}

TEST_F(SqliteStateStoreListTest, RecordsCreatedWhilePagingDoNotShiftLaterPages) {
  RequestFilter filter;
  filter.limit = 6;
  auto first = store_->List(filter);
  ASSERT_TRUE(first.ok());
  std::vector<std::string> ids;
  for (const auto& record : first->records) ids.push_back(record.id);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->Save(MakeRecord("new-" + std::to_string(i), 5000 + i)).ok());
  }
  filter.page_token = first->next_page_token;
  size_t pages = 0;
  for (const auto& id : ListAllIds(*store_, filter, &pages)) ids.push_back(id);
  EXPECT_EQ(ids, Expected([](const RequestRecord&) { return true; }));
}

TEST_F(SqliteStateStoreListTest, RejectsMalformedPageTokenAndZeroLimit) {
  RequestFilter filter;
  for (const char* token : {"not-a-token", "abc", "76313a313a"}) {
    filter.page_token = token;
    EXPECT_EQ(store_->List(filter).status().code(), StatusCode::kInvalidArgument) << token;
  }
  filter.page_token.clear();
  filter.limit = 0;
  EXPECT_EQ(store_->List(filter).status().code(), StatusCode::kInvalidArgument);
  filter.limit = 1'000'000;  // clamped, not refused
  auto page = store_->List(filter);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), records_.size());
  EXPECT_TRUE(page->next_page_token.empty());
}

TEST(SqliteStateStoreTest, LoadActiveReturnsEveryNonTerminalRequestOldestFirst) {
  ScratchDir dir;
  auto store = OpenOrDie(dir.File("state.db"));
  ASSERT_TRUE(store);
  std::vector<std::string> expected;
  int64_t created = 100;
  for (RequestState state : AllRequestStates()) {
    const std::string id = "r-" + std::string(RequestStateName(state));
    ASSERT_TRUE(store->Save(MakeRecord(id, created--, "alice", state)).ok());
    if (!IsTerminal(state)) expected.insert(expected.begin(), id);
  }
  // A request that moved from active to terminal drops out.
  RequestRecord closing = MakeRecord("r-closing", 1, "alice", RequestState::kReady);
  ASSERT_TRUE(store->Save(closing).ok());
  closing.version = 2;
  closing.state = RequestState::kClosed;
  ASSERT_TRUE(store->Save(closing).ok());

  auto active = store->LoadActive();
  ASSERT_TRUE(active.ok()) << active.status().ToString();
  std::vector<std::string> ids;
  for (const auto& record : *active) {
    EXPECT_FALSE(IsTerminal(record.state)) << record.id;
    ids.push_back(record.id);
  }
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(ids.size(), 7u);
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
  EXPECT_EQ(QueryInt(path, "SELECT max(version) FROM schema_version"), 1);
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
