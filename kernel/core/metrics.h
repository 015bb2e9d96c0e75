// Process metrics in Prometheus text exposition format. Counters and gauges
// are lock-free atomics; labels are fixed at registration.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace airlock {

class Metrics {
 public:
  class Counter {
   public:
    void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    void Set(int64_t n) { value_.store(n, std::memory_order_relaxed); }
    int64_t value() const { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<int64_t> value_{0};
  };

  // Registers (or finds) a series. `labels` is the rendered label set,
  // e.g. `state="ready"`. The returned reference lives as long as Metrics.
  Counter& Get(const std::string& name, const std::string& help, const std::string& type,
               const std::string& labels = "");

  // The whole registry as Prometheus text.
  std::string Render() const;

 private:
  struct Series {
    std::string name, help, type, labels;
    Counter counter;
  };
  mutable std::mutex mu_;
  std::deque<Series> series_;  // deque: stable addresses
};

}  // namespace airlock
