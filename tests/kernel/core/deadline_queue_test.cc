#include "kernel/core/deadline_queue.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(DeadlineQueue, TakesOnlyWhatIsDueEarliestFirst) {
  DeadlineQueue queue;
  queue.Set("c", 300);
  queue.Set("a", 100);
  queue.Set("b", 200);
  EXPECT_EQ(queue.Earliest(), 100);
  EXPECT_TRUE(queue.TakeDue(99).empty());
  EXPECT_EQ(queue.TakeDue(200), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.Earliest(), 300);
  EXPECT_EQ(queue.TakeDue(1000), (std::vector<std::string>{"c"}));
  EXPECT_FALSE(queue.Earliest().has_value());
}

TEST(DeadlineQueue, SetSaysWhetherTheDeadlineBecameTheEarliest) {
  DeadlineQueue queue;
  EXPECT_TRUE(queue.Set("a", 500));
  EXPECT_FALSE(queue.Set("b", 900));
  EXPECT_TRUE(queue.Set("c", 100));
  EXPECT_FALSE(queue.Set("c", 100));  // unchanged
  EXPECT_TRUE(queue.Set("b", 50));    // moved ahead of everything
}

TEST(DeadlineQueue, MovingADeadlineReplacesTheOldOne) {
  DeadlineQueue queue;
  queue.Set("a", 100);
  queue.Set("a", 400);
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_TRUE(queue.TakeDue(300).empty());
  EXPECT_EQ(queue.TakeDue(400), (std::vector<std::string>{"a"}));
}

TEST(DeadlineQueue, ClearForgetsTheIdAndToleratesUnknownOnes) {
  DeadlineQueue queue;
  queue.Set("a", 100);
  queue.Set("b", 100);
  queue.Clear("a");
  queue.Clear("never-set");
  EXPECT_EQ(queue.TakeDue(100), (std::vector<std::string>{"b"}));
  EXPECT_EQ(queue.size(), 0u);
}

}  // namespace
}  // namespace airlock
