// The audit chain's record format, shared by the writer (audit_log.cc) and
// the verifier (audit_verify.cc) so both agree byte for byte. Internal to
// kernel/audit; other folders use audit_log.h and audit_verify.h.
//
// A record is one line of JSON: the caller's event object plus "seq"
// (1-based, contiguous), "ts" (RFC 3339 UTC, microseconds), "prev" (hash of
// the previous record, 64 zeros for the first) and "hash", where
//   hash = hex(SHA-256(prev || canonical))
//   canonical = nlohmann dump() of the record without "hash" (keys sorted,
//               no whitespace; invalid UTF-8 replaced by U+FFFD).
// The writer emits `canonical` with `,"hash":"<hex>"` spliced before the
// final brace, so the line need not be re-serialized after hashing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_head.h"

namespace airlock::audit_internal {

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Longest line the scanner accepts; records are bounded well below this by
// AuditOptions::max_record_bytes, so anything longer is damage.
inline constexpr size_t kMaxLineBytes = 4u << 20;

// Deepest nesting of objects and arrays in a record. Events reach the log
// nesting at most 64 levels (host services, enclave frames); a line nesting
// deeper is damage, refused before it is parsed (dumping it for the hash
// would recurse once per level).
inline constexpr int kMaxRecordDepth = 128;

// The checks every backend makes on an event before it appends it: a JSON
// object with a non-empty short string "event", an optional short string
// "request_id", and none of the keys the log assigns.
Status ValidateEvent(const nlohmann::json& event);

// Checks one record line (without its newline) against the chain: it must
// be record `expected_seq` following `prev_hash`. On success fills `record`
// (with "hash"), `seq` and `hash` and returns nullopt; otherwise returns
// what is wrong.
std::optional<std::string> CheckRecordLine(std::string_view text, uint64_t expected_seq,
                                           std::string_view prev_hash, nlohmann::json* record,
                                           uint64_t* seq, std::string* hash);

// The canonical serialization (see the file comment).
std::string CanonicalDump(const nlohmann::json& record);

// hex(SHA-256(prev || canonical)).
std::string ChainHash(std::string_view prev, std::string_view canonical);

// "2024-05-01T12:34:56.123456Z".
std::string FormatTimestamp(std::chrono::system_clock::time_point time);

// The line written for a record: canonical with "hash" spliced in, plus '\n'.
void AppendRecordLine(std::string_view canonical, std::string_view hash, std::string* out);

// One verified record handed to ScanAuditFile's callback. `text` excludes
// the newline; `record` still holds "hash".
struct ScannedRecord {
  uint64_t line = 0;  // 1-based
  uint64_t offset = 0;
  std::string_view text;
  const nlohmann::json* record = nullptr;
  uint64_t seq = 0;
  std::string_view hash;
};

struct ScanResult {
  uint64_t records = 0;   // records that verified, in order
  uint64_t last_seq = 0;  // 0 when no record verified
  std::string last_hash{kGenesisHash};
  uint64_t good_end_offset = 0;  // byte just past the last verified line
  // Set when a line fails: its 1-based number and what is wrong.
  uint64_t bad_line = 0;
  std::string problem;
  // The file ends in bytes without a newline (a write cut short by a crash
  // or a failed write); `bad_line`/`problem` describe it too.
  bool torn_tail = false;
};

// Reads `fd` from offset 0 and checks every line against the chain, stopping
// at the first problem. Calls `on_record` for each verified record (may be
// empty). Read errors are reported as a problem on the line being read.
ScanResult ScanAuditFile(int fd, const std::function<void(const ScannedRecord&)>& on_record);

// The anchor file (<log>.head) holds the seq and hash of the last flushed
// record, in a fixed-width line rewritten in place: "<seq:20 digits> <hash>\n".
struct Anchor {
  uint64_t seq = 0;
  std::string hash;
};
inline constexpr size_t kAnchorBytes = 20 + 1 + 64 + 1;

std::string AnchorPathFor(const std::string& log_path);
std::string FormatAnchor(const Anchor& anchor);
// nullopt when the file does not exist; an error when it exists but is malformed.
Result<std::optional<Anchor>> ReadAnchor(const std::string& anchor_path);

// True for 64 lowercase hex characters.
bool IsHashHex(std::string_view text);

// Checks the records of a scan against trusted (seq, hash) points (the heads
// of verified signed checkpoints) as they go by. The hash at seq S commits
// to every record up to S, so a match proves that whole prefix; a mismatch
// means something changed after the previous matching point.
class PointChecker {
 public:
  explicit PointChecker(std::vector<AuditHead> points);
  void OnRecord(uint64_t seq, std::string_view hash);
  // After the scan, `last_seq` being the last record that verified: nullopt
  // when every point matched, otherwise what is wrong and where.
  std::optional<std::string> Finish(uint64_t last_seq);
  // The seq of the first point that failed (valid after Finish reported).
  uint64_t failed_seq() const { return failed_seq_; }
  // The highest point that matched (0 when none did): records up to it are
  // covered by a signature.
  uint64_t covered_seq() const { return covered_seq_; }
  bool has_points() const { return !points_.empty(); }

 private:
  std::vector<AuditHead> points_;  // sorted by seq
  size_t next_ = 0;                // first point not yet reached
  uint64_t covered_seq_ = 0;
  uint64_t failed_seq_ = 0;
  std::optional<std::string> problem_;
};

}  // namespace airlock::audit_internal
