// Pipelined group commit: consecutive groups overlap their syncs, yet every
// caller is answered only once its record and every earlier one is durable,
// in group order, and a failed sync fails every group written behind it.
// The sync_group seam observes (and, where a test needs an interleaving,
// holds or fails) each group's sync on a real file.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/audit/audit_log.h"
#include "kernel/audit/audit_verify.h"
#include "tests/kernel/audit/audit_test_util.h"

namespace airlock {
namespace {

using testing_audit::ReadLines;
using testing_audit::ScratchDir;

constexpr auto kPatience = std::chrono::seconds(10);

// Counts group syncs, tracks which run at once and on which descriptors, and
// lets a test decide what the n-th sync (numbered from 1) does.
class SyncProbe {
 public:
  // (call number, fd) -> 0 or an errno value. Default: a real fdatasync.
  std::function<int(int, int)> behaviour;

  std::function<int(int)> Hook() {
    return [this](int fd) { return Sync(fd); };
  }

  int Sync(int fd) {
    struct stat info {};
    const bool sized = ::fstat(fd, &info) == 0;
    int call;
    {
      std::lock_guard lock(mu_);
      call = ++started_;
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
      if (!fds_in_flight_.insert(fd).second) fd_shared_ = true;
      fds_seen_.insert(fd);
      cv_.notify_all();
    }
    const int result = behaviour ? behaviour(call, fd) : RealSync(fd);
    std::lock_guard lock(mu_);
    // Everything in the file when this sync began is durable once it succeeds.
    if (result == 0 && sized) durable_bytes_ = std::max<uint64_t>(durable_bytes_, info.st_size);
    --in_flight_;
    fds_in_flight_.erase(fd);
    ++finished_;
    cv_.notify_all();
    return result;
  }

  static int RealSync(int fd) { return ::fdatasync(fd) == 0 ? 0 : errno; }

  // Waits (bounded) until `predicate` holds over the probe's counters.
  bool WaitUntil(const std::function<bool(const SyncProbe&)>& predicate) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kPatience, [&] { return predicate(*this); });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool WaitReleased() {
    return WaitUntil([](const SyncProbe& p) { return p.released_; });
  }

  int started() const { return started_; }  // read under WaitUntil, or after the calls
  int finished() const { return finished_; }
  int max_in_flight() const { return max_in_flight_; }
  bool fd_shared() const { return fd_shared_; }
  size_t fds_seen() const { return fds_seen_.size(); }
  uint64_t durable_bytes() {
    std::lock_guard lock(mu_);
    return durable_bytes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
  int finished_ = 0;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  std::set<int> fds_in_flight_;
  std::set<int> fds_seen_;
  bool fd_shared_ = false;
  bool released_ = false;
  uint64_t durable_bytes_ = 0;
};

AuditOptions ProbedOptions(SyncProbe& probe, size_t sync_fds = 4) {
  AuditOptions options;
  options.sync_fds = sync_fds;
  options.sync_group = probe.Hook();
  return options;
}

nlohmann::json Event(const std::string& name, const std::string& request_id = "r") {
  return {{"event", name}, {"request_id", request_id}};
}

// An Append on its own thread whose return the test can watch for.
class AsyncAppend {
 public:
  AsyncAppend(AuditLog& log, nlohmann::json event) : log_(log) {
    thread_ = std::thread([this, event = std::move(event)]() mutable {
      Status status = log_.Append(std::move(event));
      const uint64_t seen = log_.last_sequence();
      std::lock_guard lock(mu_);
      status_ = std::move(status);
      last_sequence_on_return_ = seen;
      returned_ = true;
      cv_.notify_all();
    });
  }
  ~AsyncAppend() {
    if (thread_.joinable()) thread_.join();
  }
  // True if it returned within `wait`.
  bool ReturnsWithin(std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, wait, [this] { return returned_; });
  }
  Status Join() {
    thread_.join();
    return status_;
  }
  uint64_t last_sequence_on_return() const { return last_sequence_on_return_; }

 private:
  AuditLog& log_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool returned_ = false;
  Status status_;
  uint64_t last_sequence_on_return_ = 0;
};

// Many callers, real syncs: the chain verifies, seq follows file order, and
// when an Append returns its record is covered by a finished sync and by
// last_sequence(). No two syncs ever share a descriptor, and the pool bounds
// how many run at once.
void RunConcurrentDurabilityCheck(size_t sync_fds) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  SyncProbe probe;
  auto opened = AuditLog::Open(path, ProbedOptions(probe, sync_fds));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto log = std::move(opened).value();

  constexpr int kThreads = 16;
  constexpr int kPerThread = 60;
  struct Seen {
    uint64_t last_sequence = 0;
    uint64_t durable_bytes = 0;
  };
  std::vector<std::vector<Seen>> seen(kThreads, std::vector<Seen>(kPerThread));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        nlohmann::json event = Event("decision", "req-" + std::to_string(t));
        event["thread"] = t;
        event["i"] = i;
        if (!log->Append(std::move(event)).ok()) ++failures;
        seen[t][i] = Seen{log->last_sequence(), probe.durable_bytes()};
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  constexpr uint64_t kTotal = kThreads * kPerThread;
  EXPECT_EQ(log->last_sequence(), kTotal);
  EXPECT_LT(log->flush_count(), kTotal) << "group commit never grouped";
  EXPECT_EQ(static_cast<uint64_t>(probe.finished()), log->flush_count());
  EXPECT_FALSE(probe.fd_shared()) << "two syncs ran on one open file description";
  EXPECT_LE(probe.max_in_flight(), static_cast<int>(sync_fds));
  EXPECT_LE(probe.fds_seen(), sync_fds);

  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), kTotal);
  uint64_t end_offset = 0;
  for (size_t n = 0; n < lines.size(); ++n) {
    end_offset += lines[n].size() + 1;
    const auto record = nlohmann::json::parse(lines[n]);
    const uint64_t seq = record["seq"].get<uint64_t>();
    ASSERT_EQ(seq, n + 1) << "seq out of file order";
    const Seen& when = seen[record["thread"].get<int>()][record["i"].get<int>()];
    EXPECT_GE(when.last_sequence, seq) << "Append of seq " << seq << " returned before it was "
                                       << "reported durable";
    EXPECT_GE(when.durable_bytes, end_offset)
        << "Append of seq " << seq << " returned before a sync covered it";
  }
  const auto report = VerifyAuditFile(path);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, kTotal);
  auto mine = log->ForRequest("req-5", 1000);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->size(), static_cast<size_t>(kPerThread));
}

TEST(AuditPipelineTest, ConcurrentAppendsReturnOnlyOnceDurableWithFourSyncFds) {
  RunConcurrentDurabilityCheck(4);
}

TEST(AuditPipelineTest, ConcurrentAppendsReturnOnlyOnceDurableWithOneSyncFd) {
  RunConcurrentDurabilityCheck(1);
}

// While group 1's sync is held, group 2 is written and synced on another
// descriptor, but its caller is not answered until group 1 is durable.
TEST(AuditPipelineTest, LaterGroupIsAnsweredOnlyAfterEarlierGroupIsDurable) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  SyncProbe probe;
  probe.behaviour = [&](int call, int fd) {
    if (call == 1) probe.WaitReleased();
    return SyncProbe::RealSync(fd);
  };
  auto opened = AuditLog::Open(path, ProbedOptions(probe));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto log = std::move(opened).value();

  AsyncAppend first(*log, Event("first"));
  ASSERT_TRUE(probe.WaitUntil([](const SyncProbe& p) { return p.started() >= 1; }));
  AsyncAppend second(*log, Event("second"));
  const bool second_synced = probe.WaitUntil([](const SyncProbe& p) { return p.finished() >= 1; });
  if (!second_synced) probe.Release();  // let a serial implementation finish
  ASSERT_TRUE(second_synced) << "group 2 never synced while group 1's sync was in flight";
  EXPECT_EQ(ReadLines(path).size(), 2u) << "group 2 was not written behind group 1";

  // Group 2 is durable on its own, yet must wait for group 1.
  EXPECT_FALSE(second.ReturnsWithin(std::chrono::milliseconds(300)))
      << "group 2 was answered while group 1 was not yet durable";
  EXPECT_FALSE(first.ReturnsWithin(std::chrono::milliseconds(0)));
  EXPECT_EQ(log->last_sequence(), 0u);
  EXPECT_EQ(log->flush_count(), 0u);

  probe.Release();
  EXPECT_TRUE(first.Join().ok());
  EXPECT_TRUE(second.Join().ok());
  EXPECT_GE(first.last_sequence_on_return(), 1u);
  EXPECT_EQ(second.last_sequence_on_return(), 2u);
  EXPECT_EQ(log->flush_count(), 2u);
  EXPECT_EQ(probe.max_in_flight(), 2);
  EXPECT_EQ(probe.fds_seen(), 2u);
  const auto report = VerifyAuditFile(path);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 2u);
}

// After two good groups, group 4 syncs fine, then group 3's sync fails: both fail with the
// same status, the log is closed, and nothing of either became visible.
TEST(AuditPipelineTest, FailedSyncFailsTheGroupWrittenBehindIt) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  SyncProbe probe;
  bool second_finished_first = false;
  probe.behaviour = [&](int call, int fd) {
    if (call == 3) {  // holds until the group behind it (call 4) is synced, then fails
      second_finished_first = probe.WaitUntil([](const SyncProbe& p) { return p.finished() >= 3; });
      return EIO;
    }
    return SyncProbe::RealSync(fd);
  };
  auto opened = AuditLog::Open(path, ProbedOptions(probe));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto log = std::move(opened).value();
  ASSERT_TRUE(log->Append(Event("before")).ok());  // sync call 1
  ASSERT_TRUE(log->Append(Event("before")).ok());  // sync call 2
  ASSERT_EQ(log->last_sequence(), 2u);

  AsyncAppend failing(*log, Event("failing"));  // sync call 3: fails
  ASSERT_TRUE(probe.WaitUntil([](const SyncProbe& p) { return p.started() >= 3; }));
  AsyncAppend behind(*log, Event("behind"));  // sync call 4: succeeds
  const Status failed = failing.Join();
  const Status also_failed = behind.Join();
  EXPECT_TRUE(second_finished_first) << "group 4 never synced while group 3's sync was in flight";
  EXPECT_EQ(ReadLines(path).size(), 4u) << "the later group was not written behind the failing one";

  EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find(std::strerror(EIO)), std::string::npos) << failed.message();
  EXPECT_EQ(also_failed.code(), StatusCode::kUnavailable) << also_failed.ToString();
  EXPECT_EQ(also_failed.message(), failed.message());
  EXPECT_EQ(log->health().code(), StatusCode::kUnavailable);
  EXPECT_EQ(log->health().message(), failed.message());
  EXPECT_EQ(log->last_sequence(), 2u);
  EXPECT_EQ(log->flush_count(), 2u);
  auto visible = log->ForRequest("r", 10);
  ASSERT_TRUE(visible.ok());
  EXPECT_EQ(visible->size(), 2u);
  EXPECT_EQ(log->Append(Event("after")).code(), StatusCode::kUnavailable);
  EXPECT_EQ(probe.started(), 4);  // nothing is retried or synced after the failure
}

// Under concurrency a second group's sync starts while the first is still
// running, on a different open file description.
TEST(AuditPipelineTest, SyncsOfConsecutiveGroupsOverlap) {
  ScratchDir dir;
  SyncProbe probe;
  bool overlapped = false;
  probe.behaviour = [&](int call, int fd) {
    if (call == 1) {
      overlapped = probe.WaitUntil([](const SyncProbe& p) { return p.started() >= 2; });
    }
    return SyncProbe::RealSync(fd);
  };
  auto opened = AuditLog::Open(dir.File("audit.log"), ProbedOptions(probe));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto log = std::move(opened).value();

  AsyncAppend first(*log, Event("first"));
  ASSERT_TRUE(probe.WaitUntil([](const SyncProbe& p) { return p.started() >= 1; }));
  AsyncAppend second(*log, Event("second"));
  EXPECT_TRUE(first.Join().ok());
  EXPECT_TRUE(second.Join().ok());
  EXPECT_TRUE(overlapped) << "the second group's sync never started during the first";
  EXPECT_EQ(probe.max_in_flight(), 2);
  EXPECT_FALSE(probe.fd_shared());
  EXPECT_EQ(log->last_sequence(), 2u);
}

// With every sync descriptor busy, the next leader waits for one while its
// group keeps growing; it never syncs on a busy descriptor.
TEST(AuditPipelineTest, LeaderWaitsForAFreeSyncFdWhileItsGroupGrows) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  SyncProbe probe;
  probe.behaviour = [&](int call, int fd) {
    if (call == 1) probe.WaitReleased();
    return SyncProbe::RealSync(fd);
  };
  auto opened = AuditLog::Open(path, ProbedOptions(probe, /*sync_fds=*/1));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto log = std::move(opened).value();

  AsyncAppend first(*log, Event("first"));
  ASSERT_TRUE(probe.WaitUntil([](const SyncProbe& p) { return p.started() >= 1; }));
  std::vector<std::unique_ptr<AsyncAppend>> waiting;
  for (int i = 0; i < 5; ++i) {
    waiting.push_back(std::make_unique<AsyncAppend>(*log, Event("queued")));
  }
  // One of them leads and waits for the only descriptor without writing;
  // the others queue behind it and join its group.
  EXPECT_FALSE(waiting.front()->ReturnsWithin(std::chrono::milliseconds(200)));
  EXPECT_EQ(ReadLines(path).size(), 1u) << "a group was written without a sync descriptor";
  probe.Release();
  EXPECT_TRUE(first.Join().ok());
  for (auto& append : waiting) EXPECT_TRUE(append->Join().ok());
  EXPECT_EQ(log->last_sequence(), 6u);
  EXPECT_EQ(probe.max_in_flight(), 1);
  // The five queued appends went out in one group, or at worst a few.
  EXPECT_LE(log->flush_count(), 5u);
  EXPECT_TRUE(VerifyAuditFile(path).ok);
}

}  // namespace
}  // namespace airlock
