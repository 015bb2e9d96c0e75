#include "kernel/audit/request_record_index.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <unistd.h>

namespace airlock::audit_internal {

RequestRecordIndex::RequestRecordIndex(size_t max_requests)
    : max_requests_(max_requests == 0 ? 1 : max_requests) {}

void RequestRecordIndex::Add(std::string_view request_id, RecordLocation location,
                             bool starts_request) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(request_id);
  if (it == entries_.end()) {
    Entry entry;
    // A request seen again after it was dropped has older records in the
    // part of the file it was dropped from; a new one has none.
    entry.scan_before = starts_request ? 0 : dropped_before_;
    recency_.emplace_back(request_id);
    entry.recency = std::prev(recency_.end());
    it = entries_.emplace(std::string(request_id), std::move(entry)).first;
  } else {
    recency_.splice(recency_.end(), recency_, it->second.recency);
  }
  it->second.locations.push_back(location);
  while (entries_.size() > max_requests_) {
    auto oldest = entries_.find(recency_.front());
    const RecordLocation& last = oldest->second.locations.back();
    dropped_before_ = std::max(dropped_before_, last.offset + last.length);
    entries_.erase(oldest);
    recency_.pop_front();
  }
}

RequestRecordIndex::Found RequestRecordIndex::Lookup(std::string_view request_id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(request_id);
  if (it == entries_.end()) return Found{{}, dropped_before_};
  return Found{it->second.locations, it->second.scan_before};
}

size_t RequestRecordIndex::requests() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

namespace {
constexpr size_t kScanBlockBytes = 1u << 20;
}  // namespace

Result<size_t> ReadAuditBytes(int fd, char* out, size_t size, uint64_t offset) {
  size_t have = 0;
  while (have < size) {
    const ssize_t got = ::pread(fd, out + have, size - have, static_cast<off_t>(offset + have));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return Status::Unavailable(std::string("cannot read the audit log: ") + strerror(errno));
    }
    if (got == 0) break;
    have += static_cast<size_t>(got);
  }
  return have;
}

Result<std::vector<nlohmann::json>> ScanRequestRecords(int fd, std::string_view request_id,
                                                       uint64_t before, size_t limit) {
  std::vector<nlohmann::json> found;
  const std::string quoted = "\"" + std::string(request_id) + "\"";
  std::string block;
  std::string carry;  // a line cut by the end of the previous block
  uint64_t offset = 0;
  while (offset < before && found.size() < limit) {
    block.resize(static_cast<size_t>(std::min<uint64_t>(kScanBlockBytes, before - offset)));
    AIRLOCK_ASSIGN_OR_RETURN(const size_t got,
                             ReadAuditBytes(fd, block.data(), block.size(), offset));
    if (got == 0) break;
    offset += got;
    std::string_view rest(block.data(), got);
    while (found.size() < limit) {
      const size_t newline = rest.find('\n');
      if (newline == std::string_view::npos) {
        carry.append(rest);
        break;
      }
      std::string_view line = rest.substr(0, newline);
      rest.remove_prefix(newline + 1);
      if (!carry.empty()) {
        carry.append(line);
        line = carry;
      }
      if (line.find(quoted) != std::string_view::npos) {
        auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        const auto id = record.is_object() ? record.find("request_id") : record.end();
        if (id != record.end() && id->is_string() &&
            id->get_ref<const std::string&>() == request_id) {
          found.push_back(std::move(record));
        }
      }
      carry.clear();
    }
  }
  return found;
}

}  // namespace airlock::audit_internal
