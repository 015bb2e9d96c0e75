#include "kernel/core/request_view_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace airlock {
namespace {

using nlohmann::json;

RequestViewCache::Stored Stored(const std::string& id, int64_t version) {
  auto text = std::make_shared<StoredRequestText>();
  text->id = id;
  text->version = version;
  return text;
}

std::shared_ptr<const std::string> View(const std::string& text) {
  return std::make_shared<const std::string>(text);
}

TEST(RequestViewCacheTest, AnswersOnlyForTheSnapshotsTheViewWasRenderedFrom) {
  RequestViewCache cache(8);
  const auto v1 = Stored("req_1", 1);
  const auto progress = std::make_shared<const json>(json::object());
  EXPECT_EQ(cache.Find(v1, progress), nullptr);
  cache.Put(v1, progress, View("view of v1"));
  ASSERT_NE(cache.Find(v1, progress), nullptr);
  EXPECT_EQ(*cache.Find(v1, progress), "view of v1");

  // A save gives a new stored snapshot; a report gives a new progress
  // document, even with equal content: either one misses.
  EXPECT_EQ(cache.Find(Stored("req_1", 1), progress), nullptr);
  EXPECT_EQ(cache.Find(v1, std::make_shared<const json>(json::object())), nullptr);

  const auto v2 = Stored("req_1", 2);
  cache.Put(v2, progress, View("view of v2"));
  EXPECT_EQ(cache.Find(v1, progress), nullptr);
  EXPECT_EQ(*cache.Find(v2, progress), "view of v2");
  EXPECT_EQ(cache.Find(nullptr, progress), nullptr);
}

TEST(RequestViewCacheTest, StaysWithinItsCapacity) {
  RequestViewCache cache(2);
  const auto progress = std::make_shared<const json>(json::object());
  std::vector<RequestViewCache::Stored> stored;
  for (int i = 0; i < 5; ++i) {
    stored.push_back(Stored("req_" + std::to_string(i), 1));
    cache.Put(stored.back(), progress, View("v" + std::to_string(i)));
  }
  int hits = 0;
  for (const auto& s : stored) hits += cache.Find(s, progress) != nullptr;
  EXPECT_EQ(hits, 2);
}

}  // namespace
}  // namespace airlock
