#include "kernel/state/request_text_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace airlock {
namespace {

RequestTextCache::Committed Saved(const std::string& id, int64_t version, bool inserted,
                                  int64_t created_at_us = 100) {
  RequestTextCache::Committed c;
  c.inserted = inserted;
  c.text.id = id;
  c.text.version = version;
  c.text.created_at_us = created_at_us;
  c.text.reason = "v" + std::to_string(version);
  return c;
}

std::vector<RequestTextCache::Committed> One(RequestTextCache::Committed c) {
  std::vector<RequestTextCache::Committed> group;
  group.push_back(std::move(c));
  return group;
}

RequestTextCache::Snapshot Read(const std::string& id, int64_t version) {
  auto text = std::make_shared<StoredRequestText>();
  text->id = id;
  text->version = version;
  return text;
}

TEST(RequestTextCacheTest, PublishedSavesAreFoundAndUpdatesKeepTheStoredCreationTime) {
  RequestTextCache cache(16);
  EXPECT_EQ(cache.Find("req_1"), nullptr);
  cache.Publish(One(Saved("req_1", 1, /*inserted=*/true, /*created_at_us=*/100)));
  ASSERT_NE(cache.Find("req_1"), nullptr);
  EXPECT_EQ(cache.Find("req_1")->version, 1);
  cache.Publish(One(Saved("req_1", 2, /*inserted=*/false, /*created_at_us=*/999)));
  ASSERT_NE(cache.Find("req_1"), nullptr);
  EXPECT_EQ(cache.Find("req_1")->version, 2);
  EXPECT_EQ(cache.Find("req_1")->created_at_us, 100);
}

TEST(RequestTextCacheTest, AnUpdateOfAnUncachedRequestIsNotAdded) {
  RequestTextCache cache(16);
  cache.Publish(One(Saved("req_1", 2, /*inserted=*/false)));
  EXPECT_EQ(cache.Find("req_1"), nullptr);  // its creation time is not known here
}

// A reader that loaded a row before a save was published must not put that
// older version into the cache, even when the newer one is not cached.
TEST(RequestTextCacheTest, AFillThatRacedAPublishIsDropped) {
  RequestTextCache cache(1);
  cache.Publish(One(Saved("a", 1, true)));
  cache.Publish(One(Saved("b", 1, true)));  // evicts "a"
  ASSERT_EQ(cache.Find("a"), nullptr);
  const uint64_t before_read = cache.generation();
  // ... the reader loads "a" at version 1 from the file; meanwhile:
  cache.Publish(One(Saved("a", 2, /*inserted=*/false)));  // "a" is not cached: not added
  cache.Fill(Read("a", 1), before_read);
  EXPECT_EQ(cache.Find("a"), nullptr);

  // A fill with nothing published since its read is kept.
  const uint64_t quiet = cache.generation();
  cache.Fill(Read("a", 2), quiet);
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.Find("a")->version, 2);
}

TEST(RequestTextCacheTest, AFillNeverReplacesACachedEntry) {
  RequestTextCache cache(4);
  cache.Publish(One(Saved("a", 3, true)));
  cache.Fill(Read("a", 1), cache.generation());
  EXPECT_EQ(cache.Find("a")->version, 3);
}

TEST(RequestTextCacheTest, StaysWithinItsCapacity) {
  RequestTextCache cache(3);
  std::vector<RequestTextCache::Committed> group;
  for (int i = 0; i < 10; ++i) group.push_back(Saved("r" + std::to_string(i), 1, true));
  cache.Publish(std::move(group));
  EXPECT_EQ(cache.size(), 3u);
  for (int i = 0; i < 10; ++i) cache.Fill(Read("f" + std::to_string(i), 1), cache.generation());
  EXPECT_EQ(cache.size(), 3u);

  RequestTextCache off(0);
  off.Publish(One(Saved("a", 1, true)));
  EXPECT_EQ(off.Find("a"), nullptr);
}

}  // namespace
}  // namespace airlock
