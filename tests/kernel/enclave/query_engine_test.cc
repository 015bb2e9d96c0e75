// How the query engine sizes its connections' page caches: half of what the
// memory bound leaves beside the sealed data, shared by every database of
// every connection, within SQLite's default and a ceiling.
#include "kernel/enclave/query_engine.h"

#include <gtest/gtest.h>

namespace airlock::enclave {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(QueryEnginePageCache, SharesHalfOfWhatTheBoundLeavesBesideTheData) {
  EnclaveLimits limits;
  limits.max_memory_bytes = 2048 * kMiB;
  // The join benchmark: 50 MiB of data over 3 lanes, 4 connections.
  EXPECT_EQ(QueryEngine::PageCacheBytes(limits, 4, 3, 50 * kMiB), (1998 * kMiB) / 2 / 12);
  // More connections or lanes each get less.
  EXPECT_EQ(QueryEngine::PageCacheBytes(limits, 8, 3, 50 * kMiB), (1998 * kMiB) / 2 / 24);
}

TEST(QueryEnginePageCache, NeverBelowSqlitesDefaultNorAboveTheCeiling) {
  EnclaveLimits limits;
  limits.max_memory_bytes = 2048 * kMiB;
  EXPECT_EQ(QueryEngine::PageCacheBytes(limits, 4, 3, 2040 * kMiB), 2 * kMiB);
  EXPECT_EQ(QueryEngine::PageCacheBytes(limits, 4, 3, 4096 * kMiB), 2 * kMiB) << "over the bound";
  limits.max_memory_bytes = 64 * 1024 * kMiB;
  EXPECT_EQ(QueryEngine::PageCacheBytes(limits, 1, 1, 0), 256 * kMiB);
  EXPECT_EQ(QueryEngine::PageCacheBytes(limits, 0, 0, 0), 256 * kMiB) << "no division by zero";
}

}  // namespace
}  // namespace airlock::enclave
