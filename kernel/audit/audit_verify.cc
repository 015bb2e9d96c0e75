#include "kernel/audit/audit_verify.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "kernel/audit/audit_chain.h"
#include "kernel/audit/checkpoint_file.h"

namespace airlock {
namespace {

AuditVerifyReport Fail(AuditVerifyReport report, AuditVerdict verdict, uint64_t bad_line,
                       std::string problem) {
  report.verdict = verdict;
  report.ok = false;
  report.bad_line = bad_line;
  report.problem = std::move(problem);
  return report;
}

std::string Where(const FoundCheckpoint& found) {
  return found.source + " line " + std::to_string(found.line);
}

// The checkpoints of every source whose signatures verify, or the first
// problem (a malformed line of the checkpoints file, a bad signature).
struct CollectedCheckpoints {
  std::vector<FoundCheckpoint> valid;
  std::optional<std::string> problem;     // tampering
  std::optional<std::string> unreadable;  // a named file cannot be read
  std::optional<std::string> torn;        // the checkpoints file's last line is cut short
};

CollectedCheckpoints CollectCheckpoints(const std::string& checkpoints_path,
                                        const AuditVerifyOptions& options) {
  CollectedCheckpoints out;
  std::vector<FoundCheckpoint> found;
  auto local = ReadCheckpointFile(checkpoints_path);
  if (!local.ok()) {
    out.unreadable = local.status().message();
    return out;
  }
  if (local->bad_line != 0) {
    out.problem = "checkpoints file " + checkpoints_path + " line " +
                  std::to_string(local->bad_line) + " is not a checkpoint: " + local->problem;
    return out;
  }
  if (local->torn_tail) {
    out.torn = "incomplete final checkpoint line " + std::to_string(local->torn_line) + " of " +
               checkpoints_path;
  }
  found = std::move(local->checkpoints);
  for (const std::string& file : options.shipped_checkpoint_files) {
    auto shipped = ReadShippedCheckpoints(file);
    if (!shipped.ok()) {
      out.unreadable = shipped.status().message();
      return out;
    }
    for (auto& checkpoint : shipped->checkpoints) found.push_back(std::move(checkpoint));
  }
  for (auto& checkpoint : found) {
    const Status verified = options.verifier->Verify(checkpoint.checkpoint);
    if (!verified.ok()) {
      out.problem = "checkpoint at " + Where(checkpoint) + " (seq " +
                    std::to_string(checkpoint.checkpoint.seq) + "): " + verified.message();
      return out;
    }
    out.valid.push_back(std::move(checkpoint));
  }
  return out;
}

}  // namespace

AuditVerifyReport VerifyAuditFile(const std::string& path, const AuditVerifyOptions& options) {
  AuditVerifyReport report;
  const bool keyed = options.verifier != nullptr && !options.verifier->empty();
  const std::string checkpoints_path =
      options.checkpoints_path.empty() ? CheckpointsPathFor(path) : options.checkpoints_path;

  // Checkpoints and anchor first: a log that grows meanwhile stays ahead of both.
  CollectedCheckpoints checkpoints;
  if (keyed) {
    checkpoints = CollectCheckpoints(checkpoints_path, options);
    if (checkpoints.unreadable) {
      return Fail(report, AuditVerdict::kUnreadable, 0, *checkpoints.unreadable);
    }
  }
  auto anchor = audit_internal::ReadAnchor(audit_internal::AnchorPathFor(path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Fail(report, AuditVerdict::kUnreadable, 0,
                "cannot open " + path + ": " + std::strerror(errno));
  }
  std::vector<AuditHead> points;
  std::map<uint64_t, const FoundCheckpoint*> by_seq;  // the first checkpoint found per seq
  for (const auto& found : checkpoints.valid) {
    points.push_back(AuditHead{found.checkpoint.seq, found.checkpoint.hash});
    by_seq.emplace(found.checkpoint.seq, &found);
  }
  audit_internal::PointChecker checker(std::move(points));
  std::string anchored_hash;
  const uint64_t anchor_seq = anchor.ok() && anchor->has_value() ? (*anchor)->seq : 0;
  auto scan = audit_internal::ScanAuditFile(fd, [&](const audit_internal::ScannedRecord& r) {
    if (anchor_seq != 0 && r.seq == anchor_seq) anchored_hash = std::string(r.hash);
    checker.OnRecord(r.seq, r.hash);
  });
  ::close(fd);

  report.records = scan.records;
  if (!scan.problem.empty() && !scan.torn_tail) {
    return Fail(report, AuditVerdict::kTampered, scan.bad_line, std::move(scan.problem));
  }
  if (!anchor.ok()) {
    return Fail(report, AuditVerdict::kTampered, scan.records + 1, anchor.status().message());
  }
  if (anchor->has_value()) {
    report.anchor_checked = true;
    const audit_internal::Anchor& head = **anchor;
    if (head.seq > scan.last_seq) {
      return Fail(report, AuditVerdict::kTampered, scan.records + 1,
                  "file ends at seq " + std::to_string(scan.last_seq) +
                      " but the anchor records seq " + std::to_string(head.seq) +
                      ": records were removed from the end (truncated tail)");
    }
    if (head.seq > 0 && anchored_hash != head.hash) {
      // seq N is on line N in a verified file
      return Fail(report, AuditVerdict::kTampered, head.seq,
                  "record seq " + std::to_string(head.seq) +
                      " does not match the hash in the anchor (log rewritten)");
    }
  }

  if (keyed) {
    report.signatures_checked = true;
    if (checkpoints.problem) {
      return Fail(report, AuditVerdict::kTampered, 0, *checkpoints.problem);
    }
    report.checkpoints = checkpoints.valid.size();
    if (auto contradiction = checker.Finish(scan.last_seq)) {
      std::string problem = *contradiction;
      const FoundCheckpoint* named = nullptr;
      if (checker.failed_seq() > scan.last_seq && !by_seq.empty()) {
        named = by_seq.rbegin()->second;  // truncated: the checkpoint furthest beyond the end
      } else if (auto it = by_seq.find(checker.failed_seq()); it != by_seq.end()) {
        named = it->second;
      }
      if (named != nullptr) {
        problem += " (checkpoint of " + named->checkpoint.time + " at " + Where(*named) + ")";
      }
      return Fail(report, AuditVerdict::kTampered, checker.failed_seq(), std::move(problem));
    }
    if (checkpoints.valid.empty() && scan.records > 0) {
      return Fail(report, AuditVerdict::kTampered, 0,
                  "no signed checkpoint found in " + checkpoints_path + ": none of the log's " +
                      std::to_string(scan.records) +
                      " records is covered by a signature (checkpoints removed, or the log was "
                      "written without them)");
    }
    report.covered_seq = checker.covered_seq();
    if (auto it = by_seq.find(report.covered_seq); it != by_seq.end()) {
      report.covered_time = it->second->checkpoint.time;
    }
  }

  if (scan.torn_tail) {
    return Fail(report, AuditVerdict::kIncompleteTail, scan.bad_line,
                "incomplete final record (recoverable: a write cut short by a crash or full "
                "disk): " +
                    scan.problem);
  }
  if (checkpoints.torn) {
    return Fail(report, AuditVerdict::kIncompleteTail, 0,
                *checkpoints.torn + " (recoverable: a write cut short by a crash or full disk)");
  }
  report.verdict = AuditVerdict::kIntact;
  report.ok = true;
  return report;
}

std::string FormatAuditAnchor(const AuditHead& head) {
  return audit_internal::FormatAnchor(audit_internal::Anchor{head.seq, head.hash});
}

}  // namespace airlock
