// What an audit export receiver (a TestHttpServer) was sent, and the checks
// every export suite makes of it: each record once after dedupe on "seq",
// from 1 without a gap, in order, the chain intact.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/test_http_server.h"

namespace airlock::test {

// Each accepted batch's records, in arrival order.
struct ReceivedExport {
  std::vector<std::vector<nlohmann::json>> batches;
  std::vector<std::string> authorizations;

  // Records sent in all, copies included.
  size_t sent() const {
    size_t n = 0;
    for (const auto& batch : batches) n += batch.size();
    return n;
  }
  // The highest seq received (0 when nothing was).
  uint64_t newest() const {
    uint64_t n = 0;
    for (const auto& batch : batches) {
      for (const auto& r : batch) n = std::max(n, r.value("seq", uint64_t{0}));
    }
    return n;
  }
  // True once every record from 1 to `seq` arrived (at least once).
  bool HoldsEverythingUpTo(uint64_t seq) const {
    std::set<uint64_t> seqs;
    for (const auto& batch : batches) {
      for (const auto& r : batch) seqs.insert(r.value("seq", uint64_t{0}));
    }
    return !seqs.empty() && *seqs.begin() == 1 && *seqs.rbegin() >= seq &&
           seqs.size() == *seqs.rbegin();
  }
};

// The batches of `requests` whose index is in `accepted_at` (answered 2xx).
inline ReceivedExport ParseExport(const std::vector<ReceivedRequest>& requests,
                                  const std::set<unsigned>& accepted_at) {
  ReceivedExport got;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!accepted_at.count(static_cast<unsigned>(i))) continue;
    std::vector<nlohmann::json> batch;
    std::istringstream lines(requests[i].body);
    for (std::string line; std::getline(lines, line);) {
      batch.push_back(nlohmann::json::parse(line));
    }
    got.batches.push_back(std::move(batch));
    got.authorizations.push_back(requests[i].Header("Authorization"));
  }
  return got;
}

// Each seq once after dedupe, 1..N without a gap; every copy of a record
// the same; batches of at most `batch_records`, consecutive, in order (each
// starts after the previous one's start); each record names the one before.
inline void ExpectEachRecordOnceInOrder(const ReceivedExport& got, uint64_t at_least,
                                        size_t batch_records) {
  std::map<uint64_t, nlohmann::json> unique;
  uint64_t previous_first = 0;
  for (const auto& batch : got.batches) {
    ASSERT_FALSE(batch.empty());
    EXPECT_LE(batch.size(), batch_records);
    const uint64_t first = batch.front().value("seq", uint64_t{0});
    EXPECT_GE(first, previous_first);
    previous_first = first;
    for (size_t i = 0; i < batch.size(); ++i) {
      const uint64_t seq = batch[i].value("seq", uint64_t{0});
      EXPECT_EQ(seq, first + i) << "a batch is consecutive";
      auto [it, fresh] = unique.emplace(seq, batch[i]);
      if (!fresh) EXPECT_EQ(it->second, batch[i]) << "a resent record is the same record";
    }
  }
  ASSERT_GE(unique.size(), at_least);
  EXPECT_EQ(unique.begin()->first, 1u);
  EXPECT_EQ(unique.rbegin()->first, unique.size()) << "no gap";
  for (auto it = std::next(unique.begin()); it != unique.end(); ++it) {
    EXPECT_EQ(it->second.value("prev", ""), std::prev(it)->second.value("hash", ""));
  }
}

}  // namespace airlock::test
