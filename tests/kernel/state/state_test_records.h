// Records and checks shared by the state store suites.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/state/state_store.h"

namespace airlock::test {

inline RequestRecord MakeRecord(const std::string& id, int64_t created_at_us,
                                const std::string& subject = "alice",
                                RequestState state = RequestState::kSubmitted) {
  RequestRecord record;
  record.id = id;
  record.state = state;
  record.version = 1;
  record.requester = {{"subject", subject}, {"kind", "user"}};
  record.created_at_us = created_at_us;
  record.updated_at_us = created_at_us;
  return record;
}

inline void ExpectSameRecord(const RequestRecord& actual, const RequestRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.state, expected.state);
  EXPECT_EQ(actual.version, expected.version);
  EXPECT_EQ(actual.requester, expected.requester);
  EXPECT_EQ(actual.request, expected.request);
  EXPECT_EQ(actual.decision, expected.decision);
  EXPECT_EQ(actual.approvals, expected.approvals);
  EXPECT_EQ(actual.enclave, expected.enclave);
  EXPECT_EQ(actual.tunnel, expected.tunnel);
  EXPECT_EQ(actual.reason, expected.reason);
  EXPECT_EQ(actual.created_at_us, expected.created_at_us);
  EXPECT_EQ(actual.updated_at_us, expected.updated_at_us);
  EXPECT_EQ(actual.deadline_us, expected.deadline_us);
}

// Every field set, with quotes, newlines, non-ASCII text and nesting.
inline RequestRecord FullRecord() {
  RequestRecord record;
  record.id = "req-0001";
  record.state = RequestState::kPendingApproval;
  record.version = 1;
  record.requester = {
      {"subject", "alice@example.com"}, {"kind", "user"}, {"groups", {"analysts", "eu"}}};
  record.request = {{"datasets", {{{"source", "pg-main"}, {"name", "orders"}}}},
                    {"window", {{"minutes", 90}}},
                    {"purpose", "quarterly \"churn\" review \xe2\x80\x94 caf\xc3\xa9"},
                    {"mode", "interactive"},
                    {"queries", nlohmann::json::array()}};
  record.decision = {{"outcome", "needs_approval"}, {"score", 0.25}, {"rules", {"r1", "r2"}}};
  record.approvals = nlohmann::json::array(
      {{{"subject", "bob"}, {"at", 1718000000000000}, {"comment", "ok\nfine"}}});
  record.enclave = {{"isolator", "process"}, {"isolation", "namespaces"}, {"progress", 0.5}};
  record.tunnel = {{"transport", "https"}, {"url", "https://127.0.0.1:8443/t/abc"}};
  record.reason = "awaiting approval from data owner";
  record.created_at_us = 1718000000123456;
  record.updated_at_us = 1718000000999999;
  record.deadline_us = 1718003600123456;
  return record;
}

inline RequestRecord LoadOrDie(StateStore& store, const std::string& id) {
  auto loaded = store.Load(id);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  if (!loaded.ok() || !loaded->has_value()) {
    ADD_FAILURE() << "request " << id << " not found";
    return {};
  }
  return **loaded;
}

// Every stored field of two text snapshots agrees.
inline void ExpectSameText(const StoredRequestText& got, const StoredRequestText& want) {
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.requester_subject, want.requester_subject);
  const std::string StoredRequestText::*documents[] = {
      &StoredRequestText::requester, &StoredRequestText::request, &StoredRequestText::decision,
      &StoredRequestText::approvals, &StoredRequestText::enclave, &StoredRequestText::tunnel,
      &StoredRequestText::reason};
  for (const auto document : documents) EXPECT_EQ(got.*document, want.*document);
  EXPECT_EQ(got.created_at_us, want.created_at_us);
  EXPECT_EQ(got.updated_at_us, want.updated_at_us);
  EXPECT_EQ(got.deadline_us, want.deadline_us);
}

// A pending outbox message for `notifier`, due at `next_attempt_at_us`.
inline OutboxMessage MakeMessage(const std::string& id, const std::string& notifier,
                                 int64_t next_attempt_at_us, int64_t created_at_us = 1,
                                 const std::string& request_id = "") {
  OutboxMessage message;
  message.id = id;
  message.notifier = notifier;
  message.request_id = request_id;
  message.payload = R"({"event":"request.approved","id":")" + id + R"("})";
  message.created_at_us = created_at_us;
  message.next_attempt_at_us = next_attempt_at_us;
  return message;
}

inline std::vector<std::string> MessageIds(const std::vector<OutboxMessage>& messages) {
  std::vector<std::string> ids;
  for (const OutboxMessage& message : messages) ids.push_back(message.id);
  return ids;
}

// Pages through `filter` to the end; `pages` counts the pages read.
inline std::vector<std::string> ListAllIds(StateStore& store, RequestFilter filter, size_t* pages) {
  std::vector<std::string> ids;
  *pages = 0;
  while (true) {
    auto page = store.List(filter);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    ++*pages;
    EXPECT_LE(page->records.size(), filter.limit);
    for (const auto& record : page->records) ids.push_back(record.id);
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
    if (*pages > 1000) {
      ADD_FAILURE() << "paging does not end";
      break;
    }
  }
  return ids;
}

// Requests saved before a store had its tenant column, for the backend's
// upgrade to fill it in: requester documents whose "tenant" is a string, a
// non-string or absent (a NUL elsewhere in one of them must not hide it).
inline void SaveRequestsOfEveryTenantShape(StateStore& store) {
  const std::vector<std::pair<std::string, nlohmann::json>> tenants = {
      {"acme-1", "acme"}, {"acme-2", "acme"},       {"globex", "globex"},
      {"number", 7},      {"null", nullptr},        {"object", {{"name", "acme"}}},
      {"empty", ""},      {"accent", "caf\xc3\xa9"}};
  int64_t created = 1;
  for (const auto& [id, tenant] : tenants) {
    RequestRecord record = MakeRecord(id, created++);
    record.requester["tenant"] = tenant;
    if (id == "acme-2") record.requester["groups"] = {std::string("x\0y", 3)};
    ASSERT_TRUE(store.Save(record).ok());
  }
  ASSERT_TRUE(store.Save(MakeRecord("absent", created++)).ok());
}

// After the upgrade: every request listed under its requester's string
// tenant, the others under "", and a save afterwards moving one.
inline void ExpectTenantsBackfilled(StateStore& store) {
  const auto list = [&](const std::string& tenant) {
    RequestFilter filter;
    filter.tenant = tenant;
    filter.limit = 2;
    size_t pages = 0;
    return ListAllIds(store, filter, &pages);
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(list("acme"), (Ids{"acme-2", "acme-1"}));
  EXPECT_EQ(list("globex"), (Ids{"globex"}));
  EXPECT_EQ(list("caf\xc3\xa9"), (Ids{"accent"}));
  EXPECT_EQ(list(""), (Ids{"absent", "empty", "object", "null", "number"}));
  RequestRecord moved = LoadOrDie(store, "number");
  moved.version = 2;
  moved.requester["tenant"] = "globex";
  ASSERT_TRUE(store.Save(moved).ok());
  EXPECT_EQ(list("globex"), (Ids{"number", "globex"}));
}

}  // namespace airlock::test
