// The retry schedule: doubling from the initial backoff, capped, with the
// jitter in the upper half of each step.
#include <gtest/gtest.h>

#include "kernel/notify/outbox_dispatcher.h"

namespace airlock {
namespace {

TEST(OutboxBackoff, DoublesFromTheInitialBackoffUpToTheCapWithJitterInTheUpperHalf) {
  for (uint64_t random : {uint64_t{0}, uint64_t{7}, uint64_t{123456789}, ~uint64_t{0}}) {
    const int64_t steps[] = {1000, 2000, 4000, 8000, 10000, 10000};
    for (int64_t attempt = 1; attempt <= 6; ++attempt) {
      const int64_t step = steps[attempt - 1];
      const int64_t backoff = OutboxBackoffMs(attempt, 1000, 10000, random);
      EXPECT_GE(backoff, step - step / 2) << attempt;
      EXPECT_LE(backoff, step) << attempt;
    }
  }
  // The extremes of the jitter are reached.
  EXPECT_EQ(OutboxBackoffMs(3, 1000, 10000, 0), 2000);
  EXPECT_EQ(OutboxBackoffMs(3, 1000, 10000, 2000), 4000);
  // A huge attempt count neither overflows nor passes the cap.
  EXPECT_LE(OutboxBackoffMs(1000000, 1000, 300000, 99), 300000);
  EXPECT_GE(OutboxBackoffMs(1000000, 1000, 300000, 99), 150000);
}

}  // namespace
}  // namespace airlock
