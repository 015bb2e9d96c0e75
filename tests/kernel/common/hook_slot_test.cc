#include "kernel/common/hook_slot.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace airlock {
namespace {

using namespace std::chrono_literals;

// Counts its calls; a call after its destruction is caught by ASan, and by
// `alive` where ASan is not built in.
struct Callee {
  std::atomic<bool> alive{true};
  std::atomic<int> calls{0};
  ~Callee() { alive = false; }
  void Hit() {
    EXPECT_TRUE(alive.load());
    calls.fetch_add(1);
  }
};

TEST(HookSlot, CallsTheCalleeUntilItIsRemoved) {
  HookSlot<Callee> slot;
  Callee callee;
  EXPECT_FALSE(slot.has_callee());
  EXPECT_FALSE(slot.Call([](Callee& c) { c.Hit(); }));
  slot.Set(&callee);
  EXPECT_TRUE(slot.has_callee());
  EXPECT_TRUE(slot.Call([](Callee& c) { c.Hit(); }));
  EXPECT_EQ(callee.calls.load(), 1);
  slot.Set(nullptr);
  EXPECT_FALSE(slot.Call([](Callee& c) { c.Hit(); }));
  EXPECT_EQ(callee.calls.load(), 1);
}

TEST(HookSlot, RemovalWaitsForTheCallInFlight) {
  HookSlot<Callee> slot;
  Callee callee;
  slot.Set(&callee);
  std::atomic<bool> entered{false}, release{false}, finished{false}, removed{false};
  std::thread caller([&] {
    slot.Call([&](Callee& c) {
      entered = true;
      while (!release) std::this_thread::sleep_for(1ms);
      c.Hit();
      finished = true;
    });
  });
  while (!entered) std::this_thread::sleep_for(1ms);
  std::thread remover([&] {
    slot.Set(nullptr);
    // Once Set returns the callee may be destroyed: its call must be over.
    EXPECT_TRUE(finished.load());
    removed = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(removed.load()) << "Set returned while a call was still running";
  release = true;
  caller.join();
  remover.join();
  EXPECT_TRUE(removed.load());
  EXPECT_EQ(callee.calls.load(), 1);
}

TEST(HookSlot, ACalleeDestroyedOnceSetReturnsIsNeverCalled) {
  HookSlot<Callee> slot;
  std::atomic<bool> stop{false};
  std::vector<std::thread> callers;
  for (int i = 0; i < 3; ++i) {
    callers.emplace_back([&] {
      while (!stop) {
        slot.Call([](Callee& c) { c.Hit(); });
        std::this_thread::yield();  // two cores: let the remover run too
      }
    });
  }
  for (int round = 0; round < 200; ++round) {
    auto callee = std::make_unique<Callee>();
    slot.Set(callee.get());
    // Every round is a removal under load: a caller has reached this callee.
    while (callee->calls.load() == 0) std::this_thread::yield();
    slot.Set(nullptr);
    callee.reset();  // a caller still inside would now touch freed memory
  }
  stop = true;
  for (auto& t : callers) t.join();
}

}  // namespace
}  // namespace airlock
