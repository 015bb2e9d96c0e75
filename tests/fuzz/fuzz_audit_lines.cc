// Audit log lines as `airlockd audit verify` and the kernel's start-up scan
// read them (ScanAuditFile over a real descriptor, a memfd), and the anchor
// file (ReadAnchor). The first input byte picks the mode:
//   0: the rest is an audit file as found on disk;
//   1: the rest is a list of lines; every line that is a JSON object gets a
//      correct "seq", "prev" and "hash" (as a writer holding the chain would
//      write it), so the checks behind the hash comparison are reached;
//   2: the rest is an anchor file (<log>.head);
//   3: the rest is a checkpoints file (<log>.checkpoints, strict);
//   4: the rest is a text file with shipped checkpoints in it (a copy of the
//      kernel's output or of syslog).
//
// Checked beyond the sanitizers: in mode 1 a chain whose every record has a
// non-empty "event" and a string "ts" verifies in full; in mode 2 an anchor
// that reads formats back to exactly its bytes; in modes 3 and 4 every
// checkpoint read formats to a line that parses back to the same fields.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kernel/audit/audit_chain.h"
#include "kernel/audit/checkpoint.h"
#include "kernel/audit/checkpoint_file.h"

namespace {

namespace audit = airlock::audit_internal;
using nlohmann::json;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "audit: %s\n", what.c_str());
  std::abort();
}

// A memfd holding `bytes`; the caller closes it.
int FileWith(std::string_view bytes) {
  const int fd = ::memfd_create("audit", MFD_CLOEXEC);
  if (fd < 0) Fail("memfd_create failed");
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n <= 0) Fail("write to memfd failed");
    written += static_cast<size_t>(n);
  }
  return fd;
}

audit::ScanResult Scan(std::string_view file) {
  const int fd = FileWith(file);
  uint64_t seen = 0;
  audit::ScanResult result = audit::ScanAuditFile(fd, [&](const audit::ScannedRecord& record) {
    ++seen;
    if (record.seq != seen || record.record == nullptr || !record.record->is_object()) {
      Fail("a verified record is not the next one");
    }
  });
  ::close(fd);
  if (seen != result.records) Fail("callback count differs from the records verified");
  return result;
}

// Mode 1: rewrites every JSON-object line as the writer would chain it.
void ScanRechained(std::string_view lines) {
  std::string file;
  std::string prev(audit::kGenesisHash);
  uint64_t seq = 0;
  bool all_valid = true;
  while (!lines.empty()) {
    const size_t newline = lines.find('\n');
    const std::string_view line = lines.substr(0, newline);
    lines.remove_prefix(newline == std::string_view::npos ? lines.size() : newline + 1);
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      file.append(line);
      file.push_back('\n');
      all_valid = false;
      continue;
    }
    record.erase("hash");
    record["seq"] = ++seq;
    record["prev"] = prev;
    const auto event = record.find("event");
    const auto ts = record.find("ts");
    if (event == record.end() || !event->is_string() || event->get_ref<std::string&>().empty() ||
        ts == record.end() || !ts->is_string()) {
      all_valid = false;
    }
    const std::string canonical = audit::CanonicalDump(record);
    const std::string hash = audit::ChainHash(prev, canonical);
    audit::AppendRecordLine(canonical, hash, &file);
    prev = hash;
  }
  const audit::ScanResult result = Scan(file);
  if (all_valid && (result.records != seq || !result.problem.empty() || result.torn_tail)) {
    Fail("a correctly chained log does not verify: line " + std::to_string(result.bad_line) + ": " +
         result.problem);
  }
  if (all_valid && result.last_hash != prev) Fail("the last hash is not the chain's");
}

void ReadAnchorFile(std::string_view bytes) {
  const int fd = FileWith(bytes);
  auto anchor = audit::ReadAnchor("/proc/self/fd/" + std::to_string(fd));
  ::close(fd);
  if (!anchor.ok() || !anchor->has_value()) return;
  if (audit::FormatAnchor(**anchor) != bytes) Fail("an accepted anchor does not format back");
}

// Modes 3 and 4: checkpoints as `audit verify` and the kernel read them.
void ReadCheckpoints(std::string_view bytes, bool shipped) {
  const int fd = FileWith(bytes);
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto contents = shipped ? airlock::ReadShippedCheckpoints(path) : airlock::ReadCheckpointFile(path);
  ::close(fd);
  if (!contents.ok()) return;
  if (contents->good_end_offset > bytes.size()) Fail("a checkpoint file ends past its bytes");
  for (const airlock::FoundCheckpoint& found : contents->checkpoints) {
    const airlock::AuditCheckpoint& c = found.checkpoint;
    auto again = airlock::ParseCheckpointLine(airlock::FormatCheckpointLine(c));
    if (!again.ok()) Fail("a checkpoint read does not parse back: " + again.status().message());
    if (again->seq != c.seq || again->hash != c.hash || again->time != c.time ||
        again->key_id != c.key_id || again->signature != c.signature) {
      Fail("a checkpoint read does not format back to itself");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      (void)Scan(rest);
      break;
    case 1:
      ScanRechained(rest);
      break;
    case 2:
      ReadAnchorFile(rest);
      break;
    case 3:
      ReadCheckpoints(rest, /*shipped=*/false);
      break;
    default:
      ReadCheckpoints(rest, /*shipped=*/true);
      break;
  }
  return 0;
}
