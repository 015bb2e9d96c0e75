// sdk::WindowEnd: an endpoint's window end moves later only, also when
// several threads extend it at once.
#include "airlock/cpp/window_end.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace airlock::sdk {
namespace {

TEST(WindowEnd, MovesLaterOnlyAndSaysWhyNot) {
  WindowEnd end(1000);
  EXPECT_EQ(end.get(), 1000);
  EXPECT_TRUE(end.ExtendTo(1600).ok());
  EXPECT_EQ(end.get(), 1600);
  const Status same = end.ExtendTo(1600);
  EXPECT_EQ(same.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(same.message().find("not later than the current 1600"), std::string::npos);
  EXPECT_EQ(end.ExtendTo(10).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(end.get(), 1600);
}

TEST(WindowEnd, ConcurrentExtensionsKeepTheLatest) {
  WindowEnd end(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&end, t] {
      for (int i = 1; i <= 1000; ++i) (void)end.ExtendTo(i * 8 + t);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(end.get(), 1000 * 8 + 7);
}

}  // namespace
}  // namespace airlock::sdk
