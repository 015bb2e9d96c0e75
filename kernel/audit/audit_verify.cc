#include "kernel/audit/audit_verify.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "kernel/audit/audit_chain.h"

namespace airlock {

AuditVerifyReport VerifyAuditFile(const std::string& path) {
  AuditVerifyReport report;
  // Read the anchor first: a log that grows meanwhile stays ahead of it.
  auto anchor = audit_internal::ReadAnchor(audit_internal::AnchorPathFor(path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    report.problem = "cannot open " + path + ": " + std::strerror(errno);
    return report;
  }
  std::string anchored_hash;
  const uint64_t anchor_seq = anchor.ok() && anchor->has_value() ? (*anchor)->seq : 0;
  auto scan = audit_internal::ScanAuditFile(fd, [&](const audit_internal::ScannedRecord& r) {
    if (anchor_seq != 0 && r.seq == anchor_seq) anchored_hash = std::string(r.hash);
  });
  ::close(fd);

  report.records = scan.records;
  if (!scan.problem.empty()) {
    report.bad_line = scan.bad_line;
    report.problem = std::move(scan.problem);
    return report;
  }
  if (!anchor.ok()) {
    report.bad_line = scan.records + 1;
    report.problem = anchor.status().message();
    return report;
  }
  if (anchor->has_value()) {
    report.anchor_checked = true;
    const audit_internal::Anchor& head = **anchor;
    if (head.seq > scan.last_seq) {
      report.bad_line = scan.records + 1;
      report.problem = "file ends at seq " + std::to_string(scan.last_seq) +
                       " but the anchor records seq " + std::to_string(head.seq) +
                       ": records were removed from the end (truncated tail)";
      return report;
    }
    if (head.seq > 0 && anchored_hash != head.hash) {
      report.bad_line = head.seq;  // seq N is on line N in a verified file
      report.problem = "record seq " + std::to_string(head.seq) +
                       " does not match the hash in the anchor (log rewritten)";
      return report;
    }
  }
  report.ok = true;
  return report;
}

}  // namespace airlock
