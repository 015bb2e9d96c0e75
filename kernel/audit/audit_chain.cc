#include "kernel/audit/audit_chain.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include "kernel/common/crypto.h"
#include "kernel/common/json_nesting.h"

namespace airlock::audit_internal {
namespace {

// Reads are as large as what is left of the file (plus one byte, to see the
// end in the same read), between these bounds: a small file costs a small
// buffer, a large one few reads.
constexpr size_t kMinRead = 4096;

constexpr size_t kMaxEventNameBytes = 256;
constexpr size_t kMaxEventRequestIdBytes = 256;
constexpr const char* kReservedKeys[] = {"seq", "ts", "prev", "hash"};
constexpr size_t kMaxRead = 1u << 20;

struct DigestContextDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

std::string SeqProblem(uint64_t expected, uint64_t found) {
  std::string text =
      "expected seq " + std::to_string(expected) + " but found " + std::to_string(found);
  if (found > expected) return text + " (records removed or reordered)";
  return text + " (record inserted, duplicated or reordered)";
}

}  // namespace

std::optional<std::string> CheckRecordLine(std::string_view text, uint64_t expected_seq,
                                           std::string_view prev_hash, nlohmann::json* record,
                                           uint64_t* seq, std::string* hash) {
  if (!JsonNestingWithin(text, kMaxRecordDepth)) {
    return "nests deeper than " + std::to_string(kMaxRecordDepth) + " levels";
  }
  *record = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (record->is_discarded()) return "not valid JSON";
  if (!record->is_object()) return "not a JSON object";

  auto seq_it = record->find("seq");
  if (seq_it == record->end() || !seq_it->is_number_unsigned()) {
    return "missing or malformed \"seq\"";
  }
  *seq = seq_it->get<uint64_t>();
  if (*seq != expected_seq) return SeqProblem(expected_seq, *seq);

  auto hash_it = record->find("hash");
  if (hash_it == record->end() || !hash_it->is_string() ||
      !IsHashHex(hash_it->get_ref<const std::string&>())) {
    return "missing or malformed \"hash\"";
  }
  auto prev_it = record->find("prev");
  if (prev_it == record->end() || !prev_it->is_string()) return "missing or malformed \"prev\"";
  if (prev_it->get_ref<const std::string&>() != prev_hash) {
    return "\"prev\" does not match the hash of the previous record (records removed, inserted "
           "or reordered)";
  }
  auto event_it = record->find("event");
  if (event_it == record->end() || !event_it->is_string() ||
      event_it->get_ref<const std::string&>().empty()) {
    return "missing or malformed \"event\"";
  }
  auto ts_it = record->find("ts");
  if (ts_it == record->end() || !ts_it->is_string()) return "missing or malformed \"ts\"";

  *hash = std::move(hash_it->get_ref<std::string&>());
  record->erase(hash_it);
  const std::string expected_hash = ChainHash(prev_hash, CanonicalDump(*record));
  (*record)["hash"] = *hash;
  if (expected_hash != *hash) return "hash mismatch (record content was modified)";
  return std::nullopt;
}

Status ValidateEvent(const nlohmann::json& event) {
  if (!event.is_object()) return Status::InvalidArgument("audit event must be a JSON object");
  auto name = event.find("event");
  if (name == event.end() || !name->is_string() || name->get_ref<const std::string&>().empty() ||
      name->get_ref<const std::string&>().size() > kMaxEventNameBytes) {
    return Status::InvalidArgument("audit event needs a non-empty string \"event\"");
  }
  for (const char* key : kReservedKeys) {
    if (event.contains(key)) {
      return Status::InvalidArgument(std::string("audit event must not set \"") + key +
                                     "\" (the log assigns it)");
    }
  }
  auto request_id = event.find("request_id");
  if (request_id != event.end() &&
      (!request_id->is_string() ||
       request_id->get_ref<const std::string&>().size() > kMaxEventRequestIdBytes)) {
    return Status::InvalidArgument("audit event \"request_id\" must be a short string");
  }
  return Status::Ok();
}

std::string CanonicalDump(const nlohmann::json& record) {
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ChainHash(std::string_view prev, std::string_view canonical) {
  // One context per thread, reset for every record: no allocation per hash.
  thread_local std::unique_ptr<EVP_MD_CTX, DigestContextDeleter> ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), prev.data(), prev.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), canonical.data(), canonical.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    // Cannot happen with a working OpenSSL; fall back to the one-shot helper.
    std::string joined(prev);
    joined.append(canonical);
    return Sha256Hex(joined);
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string FormatTimestamp(std::chrono::system_clock::time_point time) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  const int64_t total_us = duration_cast<microseconds>(time.time_since_epoch()).count();
  int64_t secs = total_us / 1'000'000;
  int64_t micros = total_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    secs -= 1;
  }
  const time_t as_time_t = static_cast<time_t>(secs);
  struct tm utc {};
  gmtime_r(&as_time_t, &utc);
  char buffer[96];  // generous: the compiler cannot bound tm fields
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(micros));
  return buffer;
}

void AppendRecordLine(std::string_view canonical, std::string_view hash, std::string* out) {
  // canonical is a non-empty object "{...}": splice the hash before the brace.
  out->append(canonical.substr(0, canonical.size() - 1));
  out->append(",\"hash\":\"");
  out->append(hash);
  out->append("\"}\n");
}

ScanResult ScanAuditFile(int fd, const std::function<void(const ScannedRecord&)>& on_record) {
  ScanResult result;
  std::string buffer;  // unread bytes; buffer[0] is at file offset `buffer_offset`
  uint64_t buffer_offset = 0;
  uint64_t line_number = 0;
  nlohmann::json record;
  std::string hash;
  bool eof = false;
  struct stat info {};
  const uint64_t file_size =
      ::fstat(fd, &info) == 0 && info.st_size > 0 ? static_cast<uint64_t>(info.st_size) : 0;

  while (true) {
    // Consume every complete line in the buffer.
    size_t start = 0;
    while (true) {
      const size_t newline = buffer.find('\n', start);
      if (newline == std::string::npos) break;
      ++line_number;
      const std::string_view text(buffer.data() + start, newline - start);
      uint64_t seq = 0;
      auto problem =
          CheckRecordLine(text, result.last_seq + 1, result.last_hash, &record, &seq, &hash);
      if (problem) {
        result.bad_line = line_number;
        result.problem = std::move(*problem);
        return result;
      }
      const uint64_t offset = buffer_offset + start;
      if (on_record) {
        on_record(ScannedRecord{line_number, offset, text, &record, seq, hash});
      }
      ++result.records;
      result.last_seq = seq;
      result.last_hash = hash;
      result.good_end_offset = offset + text.size() + 1;
      start = newline + 1;
    }
    buffer.erase(0, start);
    buffer_offset += start;

    if (eof) break;
    if (buffer.size() > kMaxLineBytes) {
      result.bad_line = line_number + 1;
      result.problem = "line longer than " + std::to_string(kMaxLineBytes) + " bytes";
      return result;
    }
    const size_t old_size = buffer.size();
    const uint64_t read_at = buffer_offset + old_size;
    const uint64_t left = file_size > read_at ? file_size - read_at : 0;
    const size_t chunk = static_cast<size_t>(std::clamp<uint64_t>(left + 1, kMinRead, kMaxRead));
    buffer.resize(old_size + chunk);
    ssize_t got;
    do {
      got = ::pread(fd, buffer.data() + old_size, chunk, static_cast<off_t>(read_at));
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      const int err = errno;
      result.bad_line = line_number + 1;
      result.problem = std::string("read failed: ") + std::strerror(err);
      return result;
    }
    buffer.resize(old_size + static_cast<size_t>(got));
    if (got == 0) eof = true;
  }

  if (!buffer.empty()) {
    result.torn_tail = true;
    result.bad_line = line_number + 1;
    result.problem = "incomplete final line (" + std::to_string(buffer.size()) +
                     " bytes without a newline: a write was cut short)";
  }
  return result;
}

std::string AnchorPathFor(const std::string& log_path) {
  return log_path + ".head";
}

std::string FormatAnchor(const Anchor& anchor) {
  char seq[24];
  std::snprintf(seq, sizeof(seq), "%020llu", static_cast<unsigned long long>(anchor.seq));
  std::string out(seq);
  out.push_back(' ');
  out.append(anchor.hash);
  out.push_back('\n');
  return out;
}

Result<std::optional<Anchor>> ReadAnchor(const std::string& anchor_path) {
  const int fd = ::open(anchor_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Anchor>();
    return Status::Unavailable("cannot open audit anchor " + anchor_path + ": " +
                               std::strerror(errno));
  }
  char bytes[kAnchorBytes + 1];
  size_t have = 0;
  while (have < sizeof(bytes)) {
    const ssize_t got = ::read(fd, bytes + have, sizeof(bytes) - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += static_cast<size_t>(got);
  }
  ::close(fd);
  const std::string_view text(bytes, have);
  auto malformed = [&] {
    return Status::FailedPrecondition("audit anchor " + anchor_path + " is malformed");
  };
  if (text.size() != kAnchorBytes || text[20] != ' ' || text.back() != '\n') return malformed();
  Anchor anchor;
  for (size_t i = 0; i < 20; ++i) {
    if (text[i] < '0' || text[i] > '9') return malformed();
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (anchor.seq > (UINT64_MAX - digit) / 10) return malformed();
    anchor.seq = anchor.seq * 10 + digit;
  }
  anchor.hash = std::string(text.substr(21, 64));
  if (!IsHashHex(anchor.hash)) return malformed();
  return std::optional<Anchor>(std::move(anchor));
}

bool IsHashHex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

PointChecker::PointChecker(std::vector<AuditHead> points) : points_(std::move(points)) {
  std::stable_sort(points_.begin(), points_.end(),
                   [](const AuditHead& a, const AuditHead& b) { return a.seq < b.seq; });
  // Points at seq 0 name the empty log: their hash must be the genesis hash.
  while (next_ < points_.size() && points_[next_].seq == 0) {
    if (points_[next_].hash != kGenesisHash && !problem_) {
      failed_seq_ = 0;
      problem_ = "a signed checkpoint of the empty log carries a hash that is not the genesis hash";
    }
    ++next_;
  }
}

void PointChecker::OnRecord(uint64_t seq, std::string_view hash) {
  while (next_ < points_.size() && points_[next_].seq == seq) {
    if (problem_) {
      ++next_;
      continue;
    }
    if (points_[next_].hash == hash) {
      covered_seq_ = seq;
    } else {
      failed_seq_ = seq;
      problem_ = "record seq " + std::to_string(seq) + " (line " + std::to_string(seq) +
                 ") differs from the one a signed checkpoint covers: records between seq " +
                 std::to_string(covered_seq_ + 1) + " and " + std::to_string(seq) +
                 " were edited, inserted, removed or reordered";
    }
    ++next_;
  }
}

std::optional<std::string> PointChecker::Finish(uint64_t last_seq) {
  if (problem_) return problem_;
  if (next_ < points_.size()) {
    const uint64_t seq = points_.back().seq;
    failed_seq_ = last_seq + 1;
    problem_ = "the log ends at seq " + std::to_string(last_seq) +
               " but a signed checkpoint covers seq " + std::to_string(seq) +
               ": records after seq " + std::to_string(covered_seq_) +
               " were removed or rewritten (the log was truncated)";
  }
  return problem_;
}

}  // namespace airlock::audit_internal
