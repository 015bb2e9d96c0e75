// A one-shot hand-off from one thread to one waiting thread: the waiter
// blocks in Wait() until another thread calls Post(value), then gets the
// value. Each waiter has its own signal, so a group commit wakes exactly the
// callers it finished instead of every waiter on a shared condition (which
// then also fight over the shared mutex to see whether it was their turn).
//
// Post holds the signal's own mutex while it notifies, so the waiter cannot
// return from Wait, and destroy the signal, before Post is done with it.
#pragma once

#include <condition_variable>
#include <mutex>

namespace airlock {

template <class T>
class OneShotSignal {
 public:
  OneShotSignal() = default;
  OneShotSignal(const OneShotSignal&) = delete;
  OneShotSignal& operator=(const OneShotSignal&) = delete;

  // Wakes the waiter with `value`. Call at most once.
  void Post(T value) {
    std::lock_guard lock(mu_);
    value_ = std::move(value);
    posted_ = true;
    cv_.notify_one();
  }

  // Blocks until Post, then returns the posted value.
  T Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return posted_; });
    return std::move(value_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  T value_{};
  bool posted_ = false;
};

}  // namespace airlock
