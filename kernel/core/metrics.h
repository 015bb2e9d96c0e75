// Process metrics in Prometheus text exposition format. Counters, gauges
// and histograms are lock-free atomics; labels are fixed at registration.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

  // Observations counted in cumulative buckets (`le` upper bounds), with
  // their sum and count, as Prometheus histograms are.
  class Histogram {
   public:
    explicit Histogram(std::vector<double> bounds);
    void Observe(double value);
    // The seconds since `start` (a steady clock's time point).
    void ObserveSince(std::chrono::steady_clock::time_point start) {
      Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    // Rendered samples of `name` with `labels` (may be empty).
    void Render(const std::string& name, const std::string& labels, std::string* out) const;

   private:
    const std::vector<double> bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // one per bound, then +Inf
    std::atomic<uint64_t> count_{0};
    std::atomic<uint64_t> sum_nanos_{0};  // the sum in units of 1e-9 (seconds, bytes...)
  };

  // Latency buckets for durations in seconds: 0.5 ms to 60 s.
  static std::vector<double> LatencyBuckets();
  // Buckets for durations in seconds of slow things (provisioning, an
  // approval): 0.1 s to 24 h.
  static std::vector<double> PhaseBuckets();

  // Registers (or finds) a series. `labels` is the rendered label set,
  // e.g. `state="ready"`. The returned reference lives as long as Metrics.
  Counter& Get(const std::string& name, const std::string& help, const std::string& type,
               const std::string& labels = "");
  // The same for a histogram; `bounds` are used when it is registered.
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const std::string& labels, const std::vector<double>& bounds);

  // Called at every Render, before the registry is written: gauges read
  // from elsewhere at scrape time (process memory, cache sizes). A
  // collector may register and set series; it must outlive the renders.
  void AddCollector(std::function<void(Metrics&)> collector);

  // The whole registry as Prometheus text.
  std::string Render() const;

 private:
  struct Series {
    std::string name, help, type, labels;
    Counter counter;
    std::unique_ptr<Histogram> histogram;  // type "histogram"
  };
  mutable std::mutex mu_;
  std::deque<Series> series_;                              // deque: stable addresses
  std::vector<std::function<void(Metrics&)>> collectors_;  // guarded by mu_
};

}  // namespace airlock
