// The StateStore contract, run against every backend (state_backends.h):
// versions, group commit, keyset paging, LoadActive and LoadText mean the
// same on SQLite and on PostgreSQL.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/kernel/state/state_backends.h"
#include "tests/kernel/state/state_test_records.h"

namespace airlock::test {
namespace {

template <class Backend>
class StateStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = backend_.Open();
    ASSERT_TRUE(store_);
  }

  StateStore& store() { return *store_; }

  Backend backend_;
  std::unique_ptr<StateStore> store_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(StateStoreContractTest, Backends, BackendNames);

TYPED_TEST(StateStoreContractTest, SaveThenLoadRoundTripsEveryField) {
  const RequestRecord record = FullRecord();
  ASSERT_TRUE(this->store().Save(record).ok());
  ExpectSameRecord(LoadOrDie(this->store(), record.id), record);

  auto missing = this->store().Load("req-none");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TYPED_TEST(StateStoreContractTest, LoadTextGivesTheStoredDocumentsAsTheirSerialisation) {
  StateStore& store = this->store();
  const RequestRecord record = FullRecord();
  ASSERT_TRUE(store.Save(record).ok());
  auto text = store.LoadText(record.id);
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
  auto fallback = store.StateStore::LoadText(record.id);
  ASSERT_TRUE(fallback.ok() && *fallback != nullptr);
  EXPECT_EQ((*fallback)->requester, t.requester);
  EXPECT_EQ((*fallback)->request, t.request);
  EXPECT_EQ((*fallback)->decision, t.decision);
  EXPECT_EQ((*fallback)->enclave, t.enclave);
  EXPECT_EQ((*fallback)->requester_subject, t.requester_subject);

  auto missing = store.LoadText("req-none");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, nullptr);
}

// LoadText follows every save, keeps the creation time of the insert, and
// agrees with what a store opened afresh on the same storage reads.
TYPED_TEST(StateStoreContractTest, LoadTextFollowsEverySaveAndAgreesAfterReopening) {
  RequestRecord record = FullRecord();
  ASSERT_TRUE(this->store().Save(record).ok());
  auto first = this->store().LoadText(record.id);
  ASSERT_TRUE(first.ok() && *first != nullptr);
  EXPECT_EQ((*first)->version, 1);

  RequestRecord next = record;
  next.version = 2;
  next.state = RequestState::kApproved;
  next.reason = "approved by bob";
  next.approvals = nlohmann::json::array({{{"approver", "bob"}}});
  next.created_at_us = record.created_at_us + 12345;  // an update keeps the stored one
  ASSERT_TRUE(this->store().Save(next).ok());
  auto second = this->store().LoadText(record.id);
  ASSERT_TRUE(second.ok() && *second != nullptr);
  const std::shared_ptr<const StoredRequestText> updated = *second;
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->state, RequestState::kApproved);
  EXPECT_EQ(updated->reason, "approved by bob");
  EXPECT_EQ(updated->approvals, next.approvals.dump());
  EXPECT_EQ(updated->created_at_us, record.created_at_us);
  // The earlier snapshot is immutable: a reader holding it is unaffected.
  EXPECT_EQ((*first)->version, 1);
  EXPECT_EQ((*first)->state, record.state);

  // A conflicting save changes nothing.
  ASSERT_EQ(this->store().Save(next).code(), StatusCode::kConflict);
  auto after_conflict = this->store().LoadText(record.id);
  ASSERT_TRUE(after_conflict.ok() && *after_conflict != nullptr);
  ExpectSameText(**after_conflict, *updated);

  this->store_.reset();
  auto reopened = this->backend_.Open();
  auto stored = reopened->LoadText(record.id);
  ASSERT_TRUE(stored.ok() && *stored != nullptr);
  ExpectSameText(**stored, *updated);
}

TYPED_TEST(StateStoreContractTest, EnforcesVersionsWithConflict) {
  StateStore& store = this->store();
  RequestRecord record = MakeRecord("r1", 100);
  ASSERT_TRUE(store.Save(record).ok());

  // A second insert of the same id.
  EXPECT_EQ(store.Save(record).code(), StatusCode::kConflict);
  // Skipping a version.
  RequestRecord skipped = record;
  skipped.version = 3;
  skipped.state = RequestState::kEvaluating;
  const Status skip = store.Save(skipped);
  EXPECT_EQ(skip.code(), StatusCode::kConflict);
  EXPECT_NE(skip.message().find("at version 1"), std::string::npos) << skip.message();
  EXPECT_EQ(LoadOrDie(store, "r1").state, RequestState::kSubmitted);

  // The next version wins once; a stale writer of the same version loses.
  RequestRecord next = record;
  next.version = 2;
  next.state = RequestState::kEvaluating;
  next.updated_at_us = 200;
  next.created_at_us = 999;  // ignored: creation time is fixed by the insert
  ASSERT_TRUE(store.Save(next).ok());
  RequestRecord stale = next;
  stale.state = RequestState::kClosed;
  EXPECT_EQ(store.Save(stale).code(), StatusCode::kConflict);
  const RequestRecord stored = LoadOrDie(store, "r1");
  EXPECT_EQ(stored.version, 2);
  EXPECT_EQ(stored.state, RequestState::kEvaluating);
  EXPECT_EQ(stored.updated_at_us, 200);
  EXPECT_EQ(stored.created_at_us, 100);

  // An update of a request that does not exist.
  RequestRecord ghost = MakeRecord("ghost", 1);
  ghost.version = 2;
  EXPECT_EQ(store.Save(ghost).code(), StatusCode::kConflict);
  auto ghost_loaded = store.Load("ghost");
  ASSERT_TRUE(ghost_loaded.ok());
  EXPECT_FALSE(ghost_loaded->has_value());

  // Malformed saves never reach the database.
  RequestRecord zero = MakeRecord("z", 1);
  zero.version = 0;
  EXPECT_EQ(store.Save(zero).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Save(MakeRecord("", 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Save(MakeRecord(std::string(300, 'x'), 1)).code(), StatusCode::kInvalidArgument);
  RequestRecord bad_utf8 = MakeRecord("u", 1);
  // Named type: inside a template, clang 14 never destroys a braced argument
  // of a by-value operator= such as json's, and the replaced object leaks.
  bad_utf8.request = nlohmann::json{{"purpose", "\xff\xfe"}};
  EXPECT_EQ(store.Save(bad_utf8).code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(StateStoreContractTest, ConcurrentSavesShareCommits) {
  StateStore& store = this->store();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100;
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  std::atomic<int> read_errors{0};
  // A reader listing throughout: reads run beside the writer.
  std::thread reader([&] {
    while (writing.load()) {
      RequestFilter filter;
      filter.limit = 5;
      if (!store.List(filter).ok()) ++read_errors;
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        RequestRecord record =
            MakeRecord("t" + std::to_string(t) + "-" + std::to_string(i), t * 1000 + i);
        if (!store.Save(record).ok()) ++failures;
        record.version = 2;
        record.state = RequestState::kEvaluating;
        if (!store.Save(record).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  writing = false;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(read_errors.load(), 0);
  constexpr uint64_t kSaves = 2 * kThreads * kPerThread;
  EXPECT_EQ(TypeParam::SaveCount(store), kSaves);
  EXPECT_LT(TypeParam::CommitCount(store), kSaves) << "group commit never grouped";
  this->RecordProperty("commits", std::to_string(TypeParam::CommitCount(store)));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; i += 17) {
      const RequestRecord loaded =
          LoadOrDie(store, "t" + std::to_string(t) + "-" + std::to_string(i));
      EXPECT_EQ(loaded.version, 2);
      EXPECT_EQ(loaded.state, RequestState::kEvaluating);
    }
  }
}

TYPED_TEST(StateStoreContractTest, ConflictingSaveFailsAloneInItsGroup) {
  StateStore& store = this->store();
  constexpr int kThreads = 8;
  std::atomic<int> contested_wins{0};
  std::atomic<int> contested_conflicts{0};
  std::atomic<int> own_failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        const Status contested =
            store.Save(MakeRecord("contested-" + std::to_string(round), round));
        if (contested.ok()) ++contested_wins;
        if (contested.code() == StatusCode::kConflict) ++contested_conflicts;
        if (!store.Save(MakeRecord("own-" + std::to_string(t) + "-" + std::to_string(round), round))
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
  auto page = store.List(all);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 20u + 20u * kThreads);
}

TYPED_TEST(StateStoreContractTest, LoadActiveReturnsEveryNonTerminalRequestOldestFirst) {
  StateStore& store = this->store();
  std::vector<std::string> expected;
  int64_t created = 100;
  for (RequestState state : AllRequestStates()) {
    const std::string id = "r-" + std::string(RequestStateName(state));
    ASSERT_TRUE(store.Save(MakeRecord(id, created--, "alice", state)).ok());
    if (!IsTerminal(state)) expected.insert(expected.begin(), id);
  }
  // A request that moved from active to terminal drops out.
  RequestRecord closing = MakeRecord("r-closing", 1, "alice", RequestState::kReady);
  ASSERT_TRUE(store.Save(closing).ok());
  closing.version = 2;
  closing.state = RequestState::kClosed;
  ASSERT_TRUE(store.Save(closing).ok());

  auto active = store.LoadActive();
  ASSERT_TRUE(active.ok()) << active.status().ToString();
  std::vector<std::string> ids;
  for (const auto& record : *active) {
    EXPECT_FALSE(IsTerminal(record.state)) << record.id;
    ids.push_back(record.id);
  }
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(ids.size(), 7u);
}

// Heartbeats: each replica's last beat by the store's clock, replaced by
// the next, listed by id; a store shared by replicas lists them all.
TYPED_TEST(StateStoreContractTest, HeartbeatsListEveryReplicaByTheStoresClock) {
  StateStore& store = this->store();
  ReplicaHeartbeat beat{"replica-b", "1.2.3", "https://b.example:8443", 111};
  auto epoch = store.AcquireLease(beat);
  ASSERT_TRUE(epoch.ok()) << epoch.status().ToString();
  beat.lease_epoch = *epoch;
  auto first = store.ListReplicas();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 1u);
  const ReplicaStatus b1 = first->at(0);
  EXPECT_EQ(b1.replica_id, "replica-b");
  EXPECT_EQ(b1.version, "1.2.3");
  EXPECT_EQ(b1.api_url, "https://b.example:8443");
  EXPECT_EQ(b1.started_at_us, 111);
  EXPECT_GT(b1.last_heartbeat_us, 0);
  EXPECT_GE(b1.now_us, b1.last_heartbeat_us);

  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  beat.api_url = "https://b.example:9443";
  ASSERT_TRUE(store.RecordHeartbeat(beat).ok());
  ASSERT_TRUE(store.AcquireLease({"replica-a", "1.2.3", "http://a:1", 222}).ok());
  auto second = store.ListReplicas();
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ(second->at(0).replica_id, "replica-a");
  EXPECT_EQ(second->at(1).replica_id, "replica-b");
  EXPECT_EQ(second->at(1).api_url, "https://b.example:9443");
  EXPECT_GE(second->at(1).last_heartbeat_us - b1.last_heartbeat_us, 5000);

  EXPECT_EQ(store.AcquireLease({"", "1", "u", 1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.RecordHeartbeat({std::string(kMaxReplicaIdBytes + 1, 'r'), "1", "u", 1}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store.RecordHeartbeat({"r", "1", std::string(kMaxReplicaUrlBytes + 1, 'u'), 1}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store.ListReplicas()->size(), 2u);

  if constexpr (TypeParam::kSharedByReplicas) {
    auto other = this->backend_.Open();
    ASSERT_TRUE(other->AcquireLease({"replica-c", "1.2.4", "http://c:1", 333}).ok());
    auto seen = store.ListReplicas();
    ASSERT_TRUE(seen.ok());
    ASSERT_EQ(seen->size(), 3u);
    EXPECT_EQ(seen->at(2).replica_id, "replica-c");
    EXPECT_EQ(seen->at(2).version, "1.2.4");
  }
}

TYPED_TEST(StateStoreContractTest, LeasesAreRenewedByTheirHolderAndFencedOnceWhenStale) {
  StateStore& store = this->store();
  ReplicaHeartbeat a{"replica-a", "1", "http://a:1", 1};
  auto first = store.AcquireLease(a);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  a.lease_epoch = *first;
  ASSERT_TRUE(store.RecordHeartbeat(a).ok());
  // A beat with any other epoch is refused, and says the lease is lost.
  ReplicaHeartbeat forged = a;
  forged.lease_epoch = *first + 1;
  EXPECT_EQ(store.RecordHeartbeat(forged).code(), StatusCode::kFailedPrecondition);
  ReplicaHeartbeat unknown{"replica-z", "1", "http://z:1", 1, 1};
  EXPECT_EQ(store.RecordHeartbeat(unknown).code(), StatusCode::kFailedPrecondition);

  // A replica that beat just now is not fenced, nor one named with a past epoch.
  auto fresh = store.FenceReplica("replica-a", a.lease_epoch, 60'000'000);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(*fresh);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto wrong_epoch = store.FenceReplica("replica-a", a.lease_epoch - 1, 10'000);
  ASSERT_TRUE(wrong_epoch.ok());
  EXPECT_FALSE(*wrong_epoch);
  // Stale: fenced exactly once, and its holder can no longer renew.
  auto fenced = store.FenceReplica("replica-a", a.lease_epoch, 10'000);
  ASSERT_TRUE(fenced.ok()) << fenced.status().ToString();
  EXPECT_TRUE(*fenced);
  auto again = store.FenceReplica("replica-a", a.lease_epoch, 10'000);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  const Status lost = store.RecordHeartbeat(a);
  EXPECT_EQ(lost.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(lost.message().find("replica-a"), std::string::npos) << lost.message();
  auto listed = store.ListReplicas();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->at(0).lease_epoch, a.lease_epoch + 1);

  // Starting again gives a newer epoch, which renews.
  auto restarted = store.AcquireLease(a);
  ASSERT_TRUE(restarted.ok());
  EXPECT_GT(*restarted, a.lease_epoch + 1);
  a.lease_epoch = *restarted;
  ASSERT_TRUE(store.RecordHeartbeat(a).ok());

  // A released lease reads as stale at once; releasing with a past epoch does nothing.
  ASSERT_TRUE(store.ReleaseLease("replica-a", a.lease_epoch - 1).ok());
  auto not_released = store.FenceReplica("replica-a", a.lease_epoch, 60'000'000);
  ASSERT_TRUE(not_released.ok());
  EXPECT_FALSE(*not_released);
  ASSERT_TRUE(store.ReleaseLease("replica-a", a.lease_epoch).ok());
  auto released = store.FenceReplica("replica-a", a.lease_epoch, 60'000'000);
  ASSERT_TRUE(released.ok());
  EXPECT_TRUE(*released);
}

// Agent links: a replica says which agents it holds; a claim moves an
// agent to it from whoever held it, a plain hold never takes one from
// another replica, and an agent it no longer holds is dropped.
TYPED_TEST(StateStoreContractTest, AgentLinksFollowClaimsAndDropWhatIsNoLongerHeld) {
  StateStore& store = this->store();
  using Links = std::map<std::string, std::string>;
  auto links = [&] {
    Links out;
    auto listed = store.ListAgentLinks();
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    if (!listed.ok()) return out;
    for (const AgentLink& link : *listed) {
      EXPECT_GT(link.linked_at_us, 0) << link.agent;
      out[link.agent] = link.replica_id;
    }
    return out;
  };
  EXPECT_TRUE(links().empty());
  ASSERT_TRUE(store.RecordAgentLinks("replica-a", {"edge", "lab"}, {"edge", "lab"}).ok());
  EXPECT_EQ(links(), (Links{{"edge", "replica-a"}, {"lab", "replica-a"}}));
  // B claims edge (it linked there): edge is B's. A still says it holds
  // edge (it has not noticed yet): that does not take it back.
  ASSERT_TRUE(store.RecordAgentLinks("replica-b", {"edge"}, {"edge"}).ok());
  ASSERT_TRUE(store.RecordAgentLinks("replica-a", {"edge", "lab"}, {}).ok());
  EXPECT_EQ(links(), (Links{{"edge", "replica-b"}, {"lab", "replica-a"}}));
  // B lets edge go; A, which links with it again, holds it without a new claim.
  ASSERT_TRUE(store.RecordAgentLinks("replica-b", {}, {}).ok());
  EXPECT_EQ(links(), (Links{{"lab", "replica-a"}}));
  ASSERT_TRUE(store.RecordAgentLinks("replica-a", {"edge", "lab"}, {}).ok());
  EXPECT_EQ(links(), (Links{{"edge", "replica-a"}, {"lab", "replica-a"}}));
  // A drops lab; B's empty word touches nothing of A's.
  ASSERT_TRUE(store.RecordAgentLinks("replica-a", {"edge"}, {}).ok());
  ASSERT_TRUE(store.RecordAgentLinks("replica-b", {}, {}).ok());
  EXPECT_EQ(links(), (Links{{"edge", "replica-a"}}));

  // Bad words store nothing.
  EXPECT_EQ(store.RecordAgentLinks("", {"x"}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.RecordAgentLinks("replica-a", {""}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store.RecordAgentLinks("replica-a", {std::string(kMaxAgentNameBytes + 1, 'n')}, {}).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(store.RecordAgentLinks("replica-a", {"edge"}, {"lab"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(links(), (Links{{"edge", "replica-a"}}));

  if constexpr (TypeParam::kSharedByReplicas) {
    auto other = this->backend_.Open();
    ASSERT_TRUE(other->RecordAgentLinks("replica-c", {"edge"}, {"edge"}).ok());
    EXPECT_EQ(links(), (Links{{"edge", "replica-c"}}));
  }
}

// Thirty requests in three states from two requesters; pairs share a
// creation time, so paging must break ties by id.
template <class Backend>
class StateStoreListTest : public StateStoreContractTest<Backend> {
 protected:
  void SetUp() override {
    StateStoreContractTest<Backend>::SetUp();
    const RequestState states[] = {RequestState::kSubmitted, RequestState::kPendingApproval,
                                   RequestState::kClosed};
    for (int i = 0; i < 30; ++i) {
      RequestRecord record =
          MakeRecord("req-" + std::string(1, static_cast<char>('a' + i % 26)) + std::to_string(i),
                     1000 + i / 2, i % 2 == 0 ? "alice" : "bob", states[i % 3]);
      ASSERT_TRUE(this->store().Save(record).ok());
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

  std::vector<RequestRecord> records_;
};

TYPED_TEST_SUITE(StateStoreListTest, Backends, BackendNames);

TYPED_TEST(StateStoreListTest, PagesThroughEverythingNewestFirstWithoutGapsOrDuplicates) {
  RequestFilter filter;
  filter.limit = 7;
  size_t pages = 0;
  const auto ids = ListAllIds(this->store(), filter, &pages);
  EXPECT_EQ(ids, this->Expected([](const RequestRecord&) { return true; }));
  EXPECT_EQ(pages, 5u);  // 7 + 7 + 7 + 7 + 2
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());

  // An exact multiple of the limit ends without an empty extra page.
  filter.limit = 10;
  ListAllIds(this->store(), filter, &pages);
  EXPECT_EQ(pages, 3u);
}

TYPED_TEST(StateStoreListTest, FiltersByStateAndRequester) {
  RequestFilter filter;
  filter.limit = 4;
  size_t pages = 0;
  filter.state = RequestState::kPendingApproval;
  EXPECT_EQ(ListAllIds(this->store(), filter, &pages), this->Expected([](const RequestRecord& r) {
    return r.state == RequestState::kPendingApproval;
  }));

  filter.state.reset();
  filter.requester_subject = "bob";
  EXPECT_EQ(ListAllIds(this->store(), filter, &pages),
            this->Expected([](const RequestRecord& r) { return r.requester_subject() == "bob"; }));

  filter.state = RequestState::kClosed;
  const auto both = ListAllIds(this->store(), filter, &pages);
  EXPECT_EQ(both, this->Expected([](const RequestRecord& r) {
    return r.requester_subject() == "bob" && r.state == RequestState::kClosed;
  }));
  EXPECT_FALSE(both.empty());

  filter.requester_subject = "nobody";
  EXPECT_TRUE(ListAllIds(this->store(), filter, &pages).empty());
  EXPECT_EQ(pages, 1u);
}

TYPED_TEST(StateStoreListTest, RecordsCreatedWhilePagingDoNotShiftLaterPages) {
  RequestFilter filter;
  filter.limit = 6;
  auto first = this->store().List(filter);
  ASSERT_TRUE(first.ok());
  std::vector<std::string> ids;
  for (const auto& record : first->records) ids.push_back(record.id);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(this->store().Save(MakeRecord("new-" + std::to_string(i), 5000 + i)).ok());
  }
  filter.page_token = first->next_page_token;
  size_t pages = 0;
  for (const auto& id : ListAllIds(this->store(), filter, &pages)) ids.push_back(id);
  EXPECT_EQ(ids, this->Expected([](const RequestRecord&) { return true; }));
}

// Ids order bytewise on every backend (PostgreSQL's locale must not reorder
// them): upper case before lower case, '-' before digits.
TYPED_TEST(StateStoreListTest, IdsBreakTiesBytewise) {
  for (const char* id : {"tie-b", "tie-B", "tie-a", "tie-1", "tie--"}) {
    ASSERT_TRUE(this->store().Save(MakeRecord(id, 9000)).ok());
  }
  RequestFilter filter;
  filter.limit = 2;
  size_t pages = 0;
  std::vector<std::string> ids = ListAllIds(this->store(), filter, &pages);
  ids.resize(5);
  EXPECT_EQ(ids, (std::vector<std::string>{"tie-b", "tie-a", "tie-B", "tie-1", "tie--"}));
}

TYPED_TEST(StateStoreListTest, RejectsMalformedPageTokenAndZeroLimit) {
  RequestFilter filter;
  for (const char* token : {"not-a-token", "abc", "76313a313a"}) {
    filter.page_token = token;
    EXPECT_EQ(this->store().List(filter).status().code(), StatusCode::kInvalidArgument) << token;
  }
  filter.page_token.clear();
  filter.limit = 0;
  EXPECT_EQ(this->store().List(filter).status().code(), StatusCode::kInvalidArgument);
  filter.limit = 1'000'000;  // clamped, not refused
  auto page = this->store().List(filter);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), this->records_.size());
  EXPECT_TRUE(page->next_page_token.empty());
}

}  // namespace
}  // namespace airlock::test
