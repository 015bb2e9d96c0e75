#include "kernel/audit/audit_log.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/audit/audit_verify.h"
#include "kernel/common/crypto.h"
#include "tests/kernel/audit/audit_test_util.h"

namespace airlock {
namespace {

using testing_audit::ReadAll;
using testing_audit::ReadLines;
using testing_audit::ScratchDir;
using testing_audit::WriteLines;

const std::string kZeros(64, '0');

nlohmann::json Event(const std::string& name, const std::string& request_id = "") {
  nlohmann::json event = {{"event", name}, {"principal", {{"subject", "alice"}, {"kind", "user"}}}};
  if (!request_id.empty()) event["request_id"] = request_id;
  return event;
}

std::unique_ptr<AuditLog> OpenOrDie(const std::string& path, AuditOptions options = {}) {
  auto log = AuditLog::Open(path, std::move(options));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

TEST(AuditLogTest, RecordsCarrySeqTimestampAndChainedHash) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  auto log = OpenOrDie(path);
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->Append(Event("request.submitted", "r1")).ok());
  ASSERT_TRUE(log->Append(Event("request.approved", "r1")).ok());
  ASSERT_TRUE(log->Append({{"event", "unicode"}, {"note", "caf\xc3\xa9 \xe2\x9c\x93\n"}}).ok());
  EXPECT_EQ(log->last_sequence(), 3u);

  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  const std::regex ts_format(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  std::string prev = kZeros;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto record = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(record["seq"].get<uint64_t>(), i + 1);
    EXPECT_TRUE(std::regex_match(record["ts"].get<std::string>(), ts_format)) << record["ts"];
    EXPECT_EQ(record["prev"], prev);
    // Recompute the hash independently from the documented definition.
    const std::string hash = record["hash"];
    record.erase("hash");
    EXPECT_EQ(Sha256Hex(prev + record.dump()), hash) << "line " << i + 1;
    prev = hash;
  }
  EXPECT_EQ(nlohmann::json::parse(lines[0])["principal"]["subject"], "alice");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["note"], "caf\xc3\xa9 \xe2\x9c\x93\n");

  // The anchor names the last record.
  const std::string anchor = ReadAll(path + ".head");
  EXPECT_EQ(anchor, std::string(19, '0') + "3 " + prev + "\n");
}

TEST(AuditLogTest, RejectsMalformedEventsWithoutWriting) {
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_TRUE(log);
  EXPECT_EQ(log->Append(nlohmann::json::array()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"request_id", "r1"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"event", ""}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"event", "x"}, {"seq", 7}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"event", "x"}, {"hash", "h"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"event", "x"}, {"request_id", 5}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append({{"event", "x"}, {"blob", std::string(300 << 10, 'a')}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(log->last_sequence(), 0u);
  EXPECT_TRUE(log->health().ok());
  // A refused event does not consume a seq or disturb the chain.
  ASSERT_TRUE(log->Append(Event("ok")).ok());
  EXPECT_EQ(log->last_sequence(), 1u);
  EXPECT_TRUE(VerifyAuditFile(dir.File("audit.log")).ok);
}

TEST(AuditLogTest, InvalidUtf8IsRecordedAsReplacementCharacters) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  auto log = OpenOrDie(path);
  ASSERT_TRUE(log);
  // Caller-supplied text (e.g. a query) may be arbitrary bytes; the record
  // must still be written and verify.
  ASSERT_TRUE(log->Append({{"event", "query"}, {"text", "SELECT '\xff\xfe'"}}).ok());
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["text"], "SELECT '\xef\xbf\xbd\xef\xbf\xbd'");
  const auto report = VerifyAuditFile(path);
  EXPECT_TRUE(report.ok) << report.problem;
}

TEST(AuditLogTest, ConcurrentAppendsShareFlushesAndKeepOrder) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  auto log = OpenOrDie(path);
  ASSERT_TRUE(log);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        nlohmann::json event = Event("decision", "req-" + std::to_string(t));
        event["thread"] = t;
        event["i"] = i;
        if (!log->Append(std::move(event)).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  constexpr uint64_t kTotal = kThreads * kPerThread;
  EXPECT_EQ(log->last_sequence(), kTotal);
  EXPECT_LT(log->flush_count(), kTotal) << "group commit never grouped";
  EXPECT_GE(log->flush_count(), 1u);
  RecordProperty("flushes", std::to_string(log->flush_count()));

  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), kTotal);
  std::vector<int> next_i(kThreads, 0);
  for (size_t n = 0; n < lines.size(); ++n) {
    const auto record = nlohmann::json::parse(lines[n]);
    ASSERT_EQ(record["seq"].get<uint64_t>(), n + 1);
    // Each thread waits for its Append, so its records appear in its order.
    const int t = record["thread"];
    EXPECT_EQ(record["i"].get<int>(), next_i[t]++);
  }
  const auto report = VerifyAuditFile(path);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, kTotal);

  auto mine = log->ForRequest("req-3", 1000);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), static_cast<size_t>(kPerThread));
  for (int i = 0; i < kPerThread; ++i) EXPECT_EQ((*mine)[i]["i"], i);
}

// AppendAll: the records of one operation land consecutively, in order, in
// one group (one flush), even while other threads append; a malformed event
// in the set keeps all of them out.
TEST(AuditLogTest, AppendAllWritesItsRecordsConsecutivelyInOneFlush) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  auto log = OpenOrDie(path);
  ASSERT_TRUE(log);

  std::vector<nlohmann::json> refused = {Event("a", "r0"), {{"event", "x"}, {"seq", 1}}};
  EXPECT_EQ(log->AppendAll(std::move(refused)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->last_sequence(), 0u);

  const uint64_t flushes_before = log->flush_count();
  ASSERT_TRUE(log->AppendAll({Event("one", "r1"), Event("two", "r1"), Event("three", "r1")}).ok());
  EXPECT_EQ(log->flush_count(), flushes_before + 1);
  EXPECT_EQ(log->last_sequence(), 3u);

  constexpr int kThreads = 6;
  constexpr int kGroups = 60;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int g = 0; g < kGroups; ++g) {
        std::vector<nlohmann::json> group;
        for (int step = 0; step < 3; ++step) {
          nlohmann::json event = Event("step", "req-" + std::to_string(t));
          event["group"] = g;
          event["step"] = step;
          group.push_back(std::move(event));
        }
        if (!log->AppendAll(std::move(group)).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  const auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u + kThreads * kGroups * 3);
  for (size_t n = 3; n < lines.size(); n += 3) {
    const auto first = nlohmann::json::parse(lines[n]);
    for (size_t k = 0; k < 3; ++k) {
      const auto record = nlohmann::json::parse(lines[n + k]);
      EXPECT_EQ(record["request_id"], first["request_id"]) << "line " << n + k;
      EXPECT_EQ(record["group"], first["group"]) << "line " << n + k;
      EXPECT_EQ(record["step"], static_cast<int>(k)) << "line " << n + k;
    }
  }
  EXPECT_TRUE(VerifyAuditFile(path).ok);
}

TEST(AuditLogTest, ForRequestReturnsMatchingRecordsInOrder) {
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_TRUE(log);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(log->Append(Event("step-" + std::to_string(i), i % 3 == 0 ? "a" : "b")).ok());
  }
  ASSERT_TRUE(log->Append(Event("no.request")).ok());

  auto a = log->ForRequest("a", 100);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 4u);
  const uint64_t expected_seqs[] = {1, 4, 7, 10};
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i]["seq"], expected_seqs[i]);
    EXPECT_EQ((*a)[i]["request_id"], "a");
    EXPECT_TRUE((*a)[i].contains("hash"));
  }
  auto limited = log->ForRequest("b", 2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[0]["event"], "step-1");
  EXPECT_EQ((*limited)[1]["event"], "step-2");
  auto none = log->ForRequest("nobody", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// The index keeps the places of the most recently audited requests only;
// the records of the others are read from the file, so every request's
// trail stays whole, in order, however many requests the log holds.
TEST(AuditLogTest, ForRequestFindsRequestsTheBoundedIndexDropped) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  AuditOptions options;
  options.max_indexed_requests = 2;
  // Twelve requests, interleaved, each started with the start event; "r0"
  // is audited again after it was dropped, and its trail spans both parts.
  std::map<std::string, std::vector<uint64_t>> expected;
  {
    auto log = OpenOrDie(path, options);
    ASSERT_TRUE(log);
    uint64_t seq = 0;
    auto append = [&](const std::string& name, const std::string& id) {
      ASSERT_TRUE(log->Append(Event(name, id)).ok());
      expected[id].push_back(++seq);
    };
    for (int i = 0; i < 12; ++i) {
      const std::string id = "r" + std::to_string(i);
      append("request.submitted", id);
      if (i > 0) append("request.approved", "r" + std::to_string(i - 1));
      // Padding between records, so the file spans several scan blocks.
      nlohmann::json note = Event("note");
      note["detail"] = std::string(200000, 'x');
      ASSERT_TRUE(log->Append(std::move(note)).ok());
      ++seq;
    }
    append("request.closed", "r0");
    append("request.closed", "r11");
    auto check = [&](AuditLog& opened) {
      for (const auto& [id, seqs] : expected) {
        auto records = opened.ForRequest(id, 100);
        ASSERT_TRUE(records.ok()) << records.status().ToString();
        std::vector<uint64_t> got;
        for (const auto& r : *records) got.push_back(r["seq"].get<uint64_t>());
        EXPECT_EQ(got, seqs) << id;
      }
      // The limit counts the records read from the file first.
      auto first = opened.ForRequest("r0", 1);
      ASSERT_TRUE(first.ok());
      ASSERT_EQ(first->size(), 1u);
      EXPECT_EQ((*first)[0]["event"], "request.submitted");
      auto nobody = opened.ForRequest("r", 10);  // a prefix of every id, no request
      ASSERT_TRUE(nobody.ok());
      EXPECT_TRUE(nobody->empty());
    };
    check(*log);
    // Reopened, the index is rebuilt under the same bound.
    log.reset();
    auto reopened = OpenOrDie(path, options);
    ASSERT_TRUE(reopened);
    check(*reopened);
  }
}

TEST(AuditLogTest, ReopenContinuesChainAndRebuildsIndex) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(log->Append(Event("first", "r" + std::to_string(i % 2))).ok());
  }
  auto log = OpenOrDie(path);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->last_sequence(), 5u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append(Event("second", "r1")).ok());
  EXPECT_EQ(log->last_sequence(), 8u);

  const auto report = VerifyAuditFile(path);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 8u);
  EXPECT_TRUE(report.anchor_checked);

  auto r1 = log->ForRequest("r1", 100);
  ASSERT_TRUE(r1.ok());
  ASSERT_EQ(r1->size(), 5u);  // seqs 2, 4 from before the reopen, 6..8 after
  EXPECT_EQ((*r1)[0]["seq"], 2);
  EXPECT_EQ((*r1)[1]["seq"], 4);
  EXPECT_EQ((*r1)[2]["seq"], 6);
  EXPECT_EQ((*r1)[4]["seq"], 8);
}

TEST(AuditLogTest, OpenRefusesBrokenChainNamingTheLine) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Append(Event("e", "r")).ok());
  }
  auto lines = ReadLines(path);
  auto record = nlohmann::json::parse(lines[2]);
  record["event"] = "forged";
  lines[2] = record.dump();
  WriteLines(path, lines);

  auto log = AuditLog::Open(path);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(log.status().message().find("line 3"), std::string::npos) << log.status().message();
  EXPECT_NE(log.status().message().find("hash mismatch"), std::string::npos);
}

TEST(AuditLogTest, OpenRefusesLogShorterThanItsAnchor) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Append(Event("e")).ok());
  }
  auto lines = ReadLines(path);
  lines.resize(3);
  WriteLines(path, lines);
  auto log = AuditLog::Open(path);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("removed from the end"), std::string::npos)
      << log.status().message();
}

TEST(AuditLogTest, OpenCutsOffTornFinalLine) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append(Event("e")).ok());
  }
  const auto good_size = std::filesystem::file_size(path);
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << R"({"event":"half","seq":4,"pr)";
  }
  auto log = OpenOrDie(path);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->last_sequence(), 3u);
  EXPECT_EQ(std::filesystem::file_size(path), good_size);
  ASSERT_TRUE(log->Append(Event("after")).ok());
  EXPECT_TRUE(VerifyAuditFile(path).ok);

  // With the repair turned off, the same damage refuses to open.
  log.reset();
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << R"({"event":)";
  }
  AuditOptions strict;
  strict.truncate_torn_tail = false;
  auto refused = AuditLog::Open(path, strict);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("line 5"), std::string::npos)
      << refused.status().message();
}

TEST(AuditLogTest, SkipRecoveryIsRefusedOnAnExistingLog) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    ASSERT_TRUE(log->Append(Event("e")).ok());
  }
  AuditOptions options;
  options.skip_recovery = true;
  EXPECT_EQ(AuditLog::Open(path, options).status().code(), StatusCode::kFailedPrecondition);
}

AuditOptions DeviceOptions() {
  AuditOptions options;
  options.skip_recovery = true;
  options.write_anchor = false;
  return options;
}

TEST(AuditLogTest, FailsClosedWhenTheDeviceIsFull) {
  auto log = OpenOrDie("/dev/full", DeviceOptions());
  ASSERT_TRUE(log);
  EXPECT_TRUE(log->health().ok());
  const Status first = log->Append(Event("e"));
  EXPECT_EQ(first.code(), StatusCode::kUnavailable);
  EXPECT_NE(first.message().find("audit log unavailable"), std::string::npos) << first.message();
  EXPECT_NE(first.message().find(std::strerror(ENOSPC)), std::string::npos) << first.message();
  EXPECT_EQ(log->health().code(), StatusCode::kUnavailable);
  const Status second = log->Append(Event("e"));
  EXPECT_EQ(second.code(), StatusCode::kUnavailable);
  EXPECT_EQ(log->last_sequence(), 0u);
  EXPECT_EQ(log->flush_count(), 0u);
}

TEST(AuditLogTest, ConcurrentCallersAllFailClosedWithoutHanging) {
  auto log = OpenOrDie("/dev/full", DeviceOptions());
  ASSERT_TRUE(log);
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (log->Append(Event("e")).code() == StatusCode::kUnavailable) ++unavailable;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(unavailable.load(), 160);
}

// Lowers RLIMIT_FSIZE (writes past it fail with EFBIG) and restores it.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &lowered) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, previous_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  sighandler_t previous_handler_ = SIG_DFL;
  bool ok_ = false;
};

TEST(AuditLogTest, FailsClosedWhenAWriteFailsMidLogAndRecoversOnReopen) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  auto log = OpenOrDie(path);
  ASSERT_TRUE(log);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append(Event("before", "r")).ok());
  const auto size = std::filesystem::file_size(path);
  {
    // Room for a few bytes only: the next record is written partially, then EFBIG.
    FileSizeLimit limit(size + 10);
    ASSERT_TRUE(limit.ok());
    const Status failed = log->Append(Event("cut", "r"));
    EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
    EXPECT_NE(failed.message().find(std::strerror(EFBIG)), std::string::npos) << failed.message();
  }
  // The limit is gone, but the log stays closed.
  const Status later = log->Append(Event("later", "r"));
  EXPECT_EQ(later.code(), StatusCode::kUnavailable);
  EXPECT_EQ(later.message(), log->health().message());
  EXPECT_EQ(log->last_sequence(), 3u);
  EXPECT_EQ(std::filesystem::file_size(path), size + 10);
  auto records = log->ForRequest("r", 10);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), 3u);  // the failed record never reached the index

  // Reopening cuts the unacknowledged partial line and continues the chain.
  log.reset();
  log = OpenOrDie(path);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->last_sequence(), 3u);
  ASSERT_TRUE(log->Append(Event("after", "r")).ok());
  const auto report = VerifyAuditFile(path);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 4u);
}

TEST(AuditLogTest, OpenRefusesANonEmptyLogWithoutItsAnchorUnlessAccepted) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  {
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    ASSERT_TRUE(log->Append(Event("e")).ok());
  }
  std::filesystem::remove(path + ".head");
  auto refused = AuditLog::Open(path);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("anchor " + path + ".head is missing"),
            std::string::npos)
      << refused.status().message();
  AuditOptions accept;
  accept.accept_missing_anchor = true;
  auto log = OpenOrDie(path, accept);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->last_sequence(), 1u);
  log.reset();
  EXPECT_TRUE(OpenOrDie(path));  // the anchor is back

  // An empty log without an anchor is a fresh start.
  ScratchDir fresh;
  std::ofstream(fresh.File("audit.log"));
  EXPECT_TRUE(OpenOrDie(fresh.File("audit.log")));
}

TEST(AuditLogTest, OpenChecksTrustedPointsAndReportsTheHead) {
  ScratchDir dir;
  const std::string path = dir.File("audit.log");
  AuditHead at2;
  {
    auto log = OpenOrDie(path);
    ASSERT_TRUE(log);
    EXPECT_EQ(log->head().seq, 0u);
    EXPECT_EQ(log->head().hash, kZeros);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(log->Append(Event("e")).ok());
      if (i == 1) at2 = log->head();
    }
    EXPECT_EQ(log->head().seq, 3u);
    EXPECT_EQ(log->head().hash, nlohmann::json::parse(ReadLines(path).back())["hash"]);
  }
  EXPECT_EQ(at2.seq, 2u);
  AuditOptions options;
  options.trusted_points = {AuditHead{0, kZeros}, at2};
  EXPECT_TRUE(OpenOrDie(path, options));

  options.trusted_points = {AuditHead{2, std::string(64, 'f')}};
  auto refused = AuditLog::Open(path, options);
  EXPECT_NE(refused.status().message().find("contradicts its signed checkpoints"),
            std::string::npos)
      << refused.status().message();
  options.trusted_points = {AuditHead{5, at2.hash}};
  refused = AuditLog::Open(path, options);
  EXPECT_NE(refused.status().message().find("ends at seq 3"), std::string::npos)
      << refused.status().message();
}

TEST(AuditLogTest, DurableListenerHearsEveryFlush) {
  struct Listener : AuditDurableListener {
    std::atomic<uint64_t> seen{0};
    void OnDurable(uint64_t seq) override { seen.store(seq); }
  } listener;
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_TRUE(log);
  log->set_durable_listener(&listener);
  ASSERT_TRUE(log->Append(Event("a")).ok());
  EXPECT_EQ(listener.seen.load(), 1u);
  ASSERT_TRUE(log->AppendAll({Event("b"), Event("c")}).ok());
  EXPECT_EQ(listener.seen.load(), 3u);
  log->set_durable_listener(nullptr);
  ASSERT_TRUE(log->Append(Event("d")).ok());
  EXPECT_EQ(listener.seen.load(), 3u);
}

// A tagger taken off the log is not running once the removal returns, so
// its owner may destroy it then (an append may be tagging at that moment).
TEST(AuditLogTest, RemovingATaggerWaitsForTheTagInFlight) {
  struct BlockingTagger : AuditRecordTagger {
    mutable std::atomic<bool> entered{false}, release{false}, done{false};
    void Tag(nlohmann::json& event) const override {
      entered = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      event["tagged"] = true;
      done = true;
    }
  };
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_NE(log, nullptr);
  BlockingTagger tagger;
  log->set_record_tagger(&tagger);
  std::thread appender([&] { EXPECT_TRUE(log->Append(Event("request.created", "req_1")).ok()); });
  while (!tagger.entered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    log->set_record_tagger(nullptr);
    EXPECT_TRUE(tagger.done.load()) << "the removal returned with a Tag still running";
    removed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(removed.load());
  tagger.release = true;
  appender.join();
  remover.join();
  // The append in flight was tagged; the next is not.
  ASSERT_TRUE(log->Append(Event("request.closed", "req_1")).ok());
  const auto lines = ReadLines(dir.File("audit.log"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(nlohmann::json::parse(lines[0]).value("tagged", false));
  EXPECT_FALSE(nlohmann::json::parse(lines[1]).contains("tagged"));
}

// The append observer hears every append after its commit with the events
// themselves (no copy is made for it): under group commit a leader writes
// other callers' records, and each caller's observer call still names its
// own events, with the sequence numbers they were written at.
TEST(AuditLogTest, AppendObserverHearsEachCallersOwnRecords) {
  struct Heard {
    std::vector<std::string> names;
    std::vector<uint64_t> seqs;
    bool ok = false;
  };
  struct Observer : AuditAppendObserver {
    std::mutex mu;
    std::vector<Heard> heard;
    void OnAppended(const std::vector<nlohmann::json>& events, const Status& status,
                    std::chrono::steady_clock::duration) override {
      Heard h;
      h.ok = status.ok();
      for (const auto& event : events) {
        h.names.push_back(event.value("event", ""));
        h.seqs.push_back(event.value("seq", uint64_t{0}));
      }
      std::lock_guard lock(mu);
      heard.push_back(std::move(h));
    }
  } observer;
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_NE(log, nullptr);
  log->set_append_observer(&observer);
  constexpr int kThreads = 4, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string name = "t" + std::to_string(t) + "." + std::to_string(i);
        EXPECT_TRUE(log->AppendAll({Event(name + ".a"), Event(name + ".b")}).ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // A refused group is heard too, unchanged, with its failure.
  EXPECT_EQ(log->AppendAll({Event("fine"), nlohmann::json{{"event", ""}}}).code(),
            StatusCode::kInvalidArgument);
  log->set_append_observer(nullptr);
  ASSERT_TRUE(log->Append(Event("unheard")).ok());

  ASSERT_EQ(observer.heard.size(), size_t{kThreads * kEach + 1});
  std::map<uint64_t, std::string> by_seq;
  for (size_t i = 0; i + 1 < observer.heard.size(); ++i) {
    const Heard& h = observer.heard[i];
    ASSERT_TRUE(h.ok);
    ASSERT_EQ(h.names.size(), 2u);
    // One caller's pair: its own names, written consecutively.
    EXPECT_EQ(h.names[0].substr(0, h.names[0].size() - 2),
              h.names[1].substr(0, h.names[1].size() - 2));
    EXPECT_EQ(h.seqs[1], h.seqs[0] + 1);
    by_seq[h.seqs[0]] = h.names[0];
    by_seq[h.seqs[1]] = h.names[1];
  }
  const Heard& refused = observer.heard.back();
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.names, (std::vector<std::string>{"fine", ""}));
  // Every record written was heard once, at the place the file holds it.
  const auto lines = ReadLines(dir.File("audit.log"));
  ASSERT_EQ(lines.size(), size_t{kThreads * kEach * 2 + 1});
  ASSERT_EQ(by_seq.size(), size_t{kThreads * kEach * 2});
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    const auto record = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(by_seq[record.at("seq").get<uint64_t>()], record.at("event").get<std::string>());
  }
}

}  // namespace
}  // namespace airlock
