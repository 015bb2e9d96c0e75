// Audit search: records across requests that match a query, newest first,
// a page at a time (GET /v1/audit without request=). It reads the log
// backwards (AuditLog::ReadBackward) and keeps what matches and what the
// caller may see, so it works the same on the file and on the chain in
// PostgreSQL.
//
// What a record carries decides most filters; who asked for a request and
// which datasets it names are facts of the request, which the caller looks
// up (RequestFactsLookup) once per request a search meets.
//
// Cost is bounded per call: a page ends after `scan_budget` records even when
// it holds fewer than `limit` matches, and its page token resumes the scan
// where it stopped. A search with `since` stops at the first record written
// well before it (records are in commit order; replicas' clocks may differ
// by the slack below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_log.h"

namespace airlock {

struct AuditSearchQuery {
  // Records of what this subject did (the record's "principal" or
  // "actor") or of the requests they asked for. Empty: anyone.
  std::string subject;
  // Records of requests that name this dataset.
  std::string dataset;
  // Records of this request.
  std::string request_id;
  // Event types: exact names, or "prefix.*" for a family. Empty: all.
  std::vector<std::string> events;
  // Written at or after since_us and before until_us (microseconds since the
  // epoch; 0: unbounded).
  int64_t since_us = 0;
  int64_t until_us = 0;
  size_t limit = 100;
  // Where the previous page stopped (its page token); nullopt: the newest.
  std::optional<uint64_t> resume;
};

// What a search needs to know of a request.
struct AuditRequestFacts {
  bool visible = false;  // the caller may see the request and its records
  std::string requester;
  std::vector<std::string> datasets;
};

// The facts of request `id`; nullopt when the state store no longer has it.
using RequestFactsLookup =
    std::function<Result<std::optional<AuditRequestFacts>>(const std::string& id)>;

struct AuditSearchPage {
  std::vector<nlohmann::json> records;  // newest first
  // Where the next page starts; nullopt when the search is complete.
  std::optional<uint64_t> next;
  size_t scanned = 0;  // records read for this page
};

struct AuditSearchScope {
  // Admins see every record; others the records of requests they may see.
  bool sees_everything = false;
  // With tenants: only records of this tenant (their "tenant"), whatever
  // else the caller may see; nullopt: every tenant's (a platform admin).
  std::optional<std::string> tenant;
  RequestFactsLookup lookup;
  size_t scan_budget = 100000;
};

// How far before `since` a search reads on, for records committed out of
// clock order by replicas whose clocks differ.
inline constexpr int64_t kAuditClockSlackUs = 300LL * 1000000;

Result<AuditSearchPage> SearchAudit(const AuditLog& log, const AuditSearchQuery& query,
                                    const AuditSearchScope& scope);

// Whether `event` is one of `patterns` (exact, or "prefix.*"); true when
// there are none.
bool AuditEventMatches(const std::vector<std::string>& patterns, std::string_view event);

}  // namespace airlock
