// What every audit backend must do for audit search (audit_search.h): read
// its records back from the end, each once, and let SearchAudit page
// through them with every filter. Run against the file (audit_search_test)
// and the chain in PostgreSQL (postgres_audit_test).
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernel/audit/audit_log.h"
#include "kernel/audit/audit_search.h"

namespace airlock::testing_audit {

inline constexpr int kSearchRecords = 1500;
inline constexpr int kSearchRequests = 30;

inline std::string SearchRequestId(int i) {
  return "req_" + std::to_string(i % kSearchRequests);
}

// Record i: one of three events, of request i % 30, done by user (i % 3);
// the asks (every third record) name their datasets. Its "tenant" (i % 4):
// "acme", "globex", null (the whole kernel's), or none (written before
// tenants were configured).
inline nlohmann::json SearchEvent(int i) {
  static const char* kEvents[] = {"request.submitted", "request.approved", "tunnel.query"};
  nlohmann::json event = {{"event", kEvents[i % 3]},
                          {"request_id", SearchRequestId(i)},
                          {"principal", {{"subject", "user" + std::to_string(i % 3)}}}};
  if (i % 3 == 0) event["datasets"] = {i % 2 == 0 ? "orders" : "customers"};
  if (i % 4 == 0) event["tenant"] = "acme";
  if (i % 4 == 1) event["tenant"] = "globex";
  if (i % 4 == 2) event["tenant"] = nullptr;
  return event;
}

inline void AppendSearchRecords(AuditLog& log) {
  for (int first = 0; first < kSearchRecords; first += 100) {
    std::vector<nlohmann::json> group;
    for (int i = first; i < first + 100; ++i) group.push_back(SearchEvent(i));
    ASSERT_TRUE(log.AppendAll(std::move(group)).ok());
  }
}

// Requests whose number is below 5 are the caller's (requested by "owner"),
// and ask for "shipments"; the rest are invisible to them.
inline AuditSearchScope SearchScope(bool admin, size_t scan_budget = 100000) {
  AuditSearchScope scope;
  scope.sees_everything = admin;
  scope.scan_budget = scan_budget;
  scope.lookup = [](const std::string& id) -> Result<std::optional<AuditRequestFacts>> {
    const int n = std::stoi(id.substr(4));
    AuditRequestFacts facts;
    facts.visible = n < 5;
    facts.requester = n < 5 ? "owner" : "someone";
    facts.datasets = {n < 5 ? "shipments" : "other"};
    return std::optional<AuditRequestFacts>(facts);
  };
  return scope;
}

// Every page of `query`, each record's seq in order of arrival.
inline std::vector<uint64_t> AllPages(const AuditLog& log, AuditSearchQuery query,
                                      const AuditSearchScope& scope, size_t* pages = nullptr) {
  std::vector<uint64_t> seqs;
  for (size_t page = 1;; ++page) {
    auto found = SearchAudit(log, query, scope);
    EXPECT_TRUE(found.ok()) << found.status().ToString();
    if (!found.ok()) return seqs;
    EXPECT_LE(found->records.size(), query.limit);
    for (const auto& record : found->records) seqs.push_back(record.value("seq", uint64_t{0}));
    if (pages != nullptr) *pages = page;
    if (!found->next) return seqs;
    EXPECT_LT(page, 10000u) << "the search does not end";
    if (page >= 10000) return seqs;
    query.resume = found->next;
  }
}

// The seqs of records 0..kSearchRecords-1 that `keep` accepts, newest first
// (record i has seq first_seq + i).
template <typename Keep>
std::vector<uint64_t> ExpectedSeqs(uint64_t first_seq, Keep keep) {
  std::vector<uint64_t> seqs;
  for (int i = kSearchRecords - 1; i >= 0; --i) {
    if (keep(i)) seqs.push_back(first_seq + static_cast<uint64_t>(i));
  }
  return seqs;
}

// `log` holds nothing yet.
inline void CheckAuditSearchContract(AuditLog& log) {
  AppendSearchRecords(log);
  const uint64_t first_seq = 1;

  // Read back from the end: every record once, newest first.
  std::vector<uint64_t> read;
  std::optional<uint64_t> position;
  for (int calls = 0; calls < 1000; ++calls) {
    auto batch = log.ReadBackward(position, 97);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (batch->empty()) break;
    EXPECT_LE(batch->size(), 97u);
    for (const auto& at : *batch) read.push_back(at.record.value("seq", uint64_t{0}));
    position = batch->back().before;
  }
  EXPECT_EQ(read, ExpectedSeqs(first_seq, [](int) { return true; }));

  // An admin's search of one event family, seven at a time.
  AuditSearchQuery query;
  query.events = {"tunnel.*"};
  query.limit = 7;
  size_t pages = 0;
  EXPECT_EQ(AllPages(log, query, SearchScope(true), &pages),
            ExpectedSeqs(first_seq, [](int i) { return i % 3 == 2; }));
  EXPECT_EQ(pages, static_cast<size_t>((kSearchRecords / 3 + 6) / 7));

  // Someone else sees only their requests' records.
  query = {};
  query.limit = 50;
  EXPECT_EQ(AllPages(log, query, SearchScope(false)),
            ExpectedSeqs(first_seq, [](int i) { return i % kSearchRequests < 5; }));

  // Subject: what they did, or what they asked for.
  query.subject = "user1";
  EXPECT_EQ(AllPages(log, query, SearchScope(true)),
            ExpectedSeqs(first_seq, [](int i) { return i % 3 == 1; }));
  query.subject = "owner";
  EXPECT_EQ(AllPages(log, query, SearchScope(true)),
            ExpectedSeqs(first_seq, [](int i) { return i % kSearchRequests < 5; }));

  // Dataset: the ask names it, the request's other records take it from
  // the request.
  query = {};
  query.dataset = "orders";
  query.events = {"request.submitted"};
  EXPECT_EQ(AllPages(log, query, SearchScope(true)),
            ExpectedSeqs(first_seq, [](int i) { return i % 6 == 0; }));
  query.dataset = "shipments";
  query.events = {"request.approved", "tunnel.query"};
  EXPECT_EQ(AllPages(log, query, SearchScope(true)),
            ExpectedSeqs(first_seq, [](int i) { return i % 3 != 0 && i % kSearchRequests < 5; }));

  // One request.
  query = {};
  query.request_id = "req_7";
  EXPECT_EQ(AllPages(log, query, SearchScope(true)),
            ExpectedSeqs(first_seq, [](int i) { return i % kSearchRequests == 7; }));

  // A small scan budget gives short pages that still add up to everything.
  query = {};
  query.events = {"request.approved"};
  query.limit = 1000;
  pages = 0;
  EXPECT_EQ(AllPages(log, query, SearchScope(true, 100), &pages),
            ExpectedSeqs(first_seq, [](int i) { return i % 3 == 1; }));
  // (One more, empty, where a backend learns only by reading that nothing
  // is older.)
  EXPECT_GE(pages, static_cast<size_t>(kSearchRecords / 100));
  EXPECT_LE(pages, static_cast<size_t>(kSearchRecords / 100 + 1));

  // A tenant's scope: its records only, never another's nor those of no
  // tenant, whatever else the caller may see.
  const auto tenant_scope = [](const std::string& tenant, bool admin, size_t scan_budget = 100000) {
    AuditSearchScope scope = SearchScope(admin, scan_budget);
    scope.tenant = tenant;
    return scope;
  };
  query = {};
  query.limit = 50;
  EXPECT_EQ(AllPages(log, query, tenant_scope("acme", true)),
            ExpectedSeqs(first_seq, [](int i) { return i % 4 == 0; }));
  EXPECT_EQ(AllPages(log, query, tenant_scope("globex", true)),
            ExpectedSeqs(first_seq, [](int i) { return i % 4 == 1; }));
  EXPECT_TRUE(AllPages(log, query, tenant_scope("initech", true)).empty());
  EXPECT_TRUE(AllPages(log, query, tenant_scope("acm", true)).empty());
  // Within the tenant, a member sees only the requests they may see.
  EXPECT_EQ(AllPages(log, query, tenant_scope("acme", false)),
            ExpectedSeqs(first_seq, [](int i) { return i % 4 == 0 && i % kSearchRequests < 5; }));
  {
    auto page = SearchAudit(log, query, tenant_scope("globex", true));
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_EQ(page->records.size(), 50u);
    for (const auto& record : page->records) EXPECT_EQ(record.value("tenant", ""), "globex");
  }
  // With the other filters, and in short pages.
  query.events = {"tunnel.*"};
  EXPECT_EQ(AllPages(log, query, tenant_scope("globex", true)),
            ExpectedSeqs(first_seq, [](int i) { return i % 4 == 1 && i % 3 == 2; }));
  query = {};
  query.request_id = "req_8";
  EXPECT_EQ(AllPages(log, query, tenant_scope("acme", true)),
            ExpectedSeqs(first_seq, [](int i) { return i % kSearchRequests == 8 && i % 4 == 0; }));
  query = {};
  query.subject = "user1";
  query.limit = 1000;
  EXPECT_EQ(AllPages(log, query, tenant_scope("acme", true, 100)),
            ExpectedSeqs(first_seq, [](int i) { return i % 3 == 1 && i % 4 == 0; }));
  // Without a tenant scope (a platform admin) every tenant's and none.
  query = {};
  query.limit = 1000;
  EXPECT_EQ(AllPages(log, query, SearchScope(true)).size(), static_cast<size_t>(kSearchRecords));

  // Time: everything was written just now.
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  query = {};
  query.until_us = now_us - 3600LL * 1000000;
  EXPECT_TRUE(AllPages(log, query, SearchScope(true)).empty());
  query = {};
  query.since_us = now_us - 3600LL * 1000000;
  EXPECT_EQ(AllPages(log, query, SearchScope(true)).size(), static_cast<size_t>(kSearchRecords));
  // A search from later than everything stops at the first record it reads.
  query.since_us = now_us + 3600LL * 1000000;
  auto later = SearchAudit(log, query, SearchScope(true));
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->records.empty());
  EXPECT_EQ(later->scanned, 1u);
  EXPECT_FALSE(later->next);

  // And forwards, for the exporters: every record once, oldest first; at
  // the end, nothing more until something is appended.
  std::vector<uint64_t> forward;
  uint64_t from = 0;
  for (int calls = 0; calls < 1000; ++calls) {
    auto batch = log.ReadForward(from, 97);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (batch->empty()) break;
    EXPECT_LE(batch->size(), 97u);
    for (const auto& at : *batch) forward.push_back(at.record.value("seq", uint64_t{0}));
    from = batch->back().after;
  }
  const std::vector<uint64_t> oldest_first(read.rbegin(), read.rend());
  EXPECT_EQ(forward, oldest_first);
  ASSERT_TRUE(log.Append({{"event", "one.more"}}).ok());
  auto more = log.ReadForward(from, 97);
  ASSERT_TRUE(more.ok());
  ASSERT_EQ(more->size(), 1u);
  EXPECT_EQ((*more)[0].record.value("event", ""), "one.more");
}

}  // namespace airlock::testing_audit
