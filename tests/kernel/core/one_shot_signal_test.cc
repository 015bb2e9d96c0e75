#include "kernel/common/one_shot_signal.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

namespace airlock {
namespace {

TEST(OneShotSignal, WaitReturnsTheValuePostedByAnotherThread) {
  OneShotSignal<std::string> signal;
  std::thread poster([&] { signal.Post("lead"); });
  EXPECT_EQ(signal.Wait(), "lead");
  poster.join();
}

TEST(OneShotSignal, AValuePostedBeforeTheWaitIsNotLost) {
  OneShotSignal<int> signal;
  signal.Post(7);
  EXPECT_EQ(signal.Wait(), 7);
}

// The waiter frees the signal as soon as Wait returns, as the audit log's and
// state store's callers do with signals on their stacks; under AddressSanitizer
// a Post that touched the signal after waking the waiter would be reported.
TEST(OneShotSignal, TheWaiterMayDestroyTheSignalAsSoonAsWaitReturns) {
  for (int i = 0; i < 2000; ++i) {
    auto signal = std::make_unique<OneShotSignal<int>>();
    OneShotSignal<int>* raw = signal.get();
    std::thread poster([raw, i] { raw->Post(i); });
    EXPECT_EQ(signal->Wait(), i);
    signal.reset();
    poster.join();
  }
}

}  // namespace
}  // namespace airlock
