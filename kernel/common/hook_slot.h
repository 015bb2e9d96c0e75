// A callee that other threads call through and that may be replaced or
// removed while they do. Set returns only once no call through the callee
// it replaced is still running, so whoever removed a callee may destroy it
// at once: no call in flight, no call to come.
//
// Calls are lock-free: two loads of the epoch, an increment and a decrement
// of that epoch's counter, a load of the callee. Set moves callers on to the
// next epoch and waits, yielding, for the calls of the previous one to
// drain, so a steady stream of new calls cannot keep it waiting. It is meant
// for set-up and tear-down; a callee must never Set its own slot.
//
// Why counters and not a lock: the callers are a hot path (every audit
// append), the setter is once per process.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

namespace airlock {

template <class T>
class HookSlot {
 public:
  HookSlot() = default;
  HookSlot(const HookSlot&) = delete;
  HookSlot& operator=(const HookSlot&) = delete;

  // Calls fn(*callee) when a callee is set; returns whether one was.
  template <class Fn>
  bool Call(Fn&& fn) const {
    // With no callee there is nothing to protect: no counting, no write
    // to a line the other callers share.
    if (callee_.load(std::memory_order_acquire) == nullptr) return false;
    // Then sequentially consistent throughout. A call counts itself in the
    // epoch it saw, then checks the epoch has not moved on: a call that
    // stays counted in epoch e was counted before Set left e, so that Set
    // waits for it; a call counted later sees the later epoch and retries,
    // and then loads the callee after Set stored the new one.
    std::atomic<uint64_t>* counted;
    for (;;) {
      const uint64_t epoch = epoch_.load(std::memory_order_seq_cst);
      counted = &in_flight_[epoch & 1];
      counted->fetch_add(1, std::memory_order_seq_cst);
      if (epoch_.load(std::memory_order_seq_cst) == epoch) break;
      counted->fetch_sub(1, std::memory_order_release);
    }
    std::atomic<uint64_t>& count = *counted;
    const Leave leave{count};
    T* callee = callee_.load(std::memory_order_seq_cst);
    if (callee == nullptr) return false;
    fn(*callee);
    return true;
  }

  // Whether a callee is set now (a hint: it may be removed at once).
  bool has_callee() const { return callee_.load(std::memory_order_acquire) != nullptr; }

  // Makes `callee` (null: none) the one called from now on, and waits until
  // no call that may have reached the previous one is running.
  void Set(T* callee) {
    std::lock_guard<std::mutex> one_setter(set_mu_);
    callee_.store(callee, std::memory_order_seq_cst);
    const uint64_t draining = epoch_.fetch_add(1, std::memory_order_seq_cst) & 1;
    while (in_flight_[draining].load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  }

 private:
  struct Leave {
    std::atomic<uint64_t>& count;
    ~Leave() { count.fetch_sub(1, std::memory_order_release); }
  };

  // On a line of its own: every call writes it, and sharing a line with
  // the owner's data would make each write evict that data from the other
  // cores.
  alignas(64) std::atomic<T*> callee_{nullptr};
  std::atomic<uint64_t> epoch_{0};
  // Calls in flight, by the parity of the epoch they started in.
  mutable std::atomic<uint64_t> in_flight_[2] = {0, 0};
  alignas(64) std::mutex set_mu_;
};

}  // namespace airlock
