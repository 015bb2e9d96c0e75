// Percentiles over a sample (nearest rank on a sorted copy), and the clock
// and progress line every suite uses.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <vector>

namespace airlock::bench {

using Clock = std::chrono::steady_clock;

inline double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One progress line on stderr (the results go to the JSON file).
inline void Log(const char* fmt, auto... args) {
  std::fprintf(stderr, fmt, args...);
  std::fputc('\n', stderr);
}

struct Summary {
  double mean = 0, p50 = 0, p95 = 0, p99 = 0, min = 0, max = 0;
  size_t n = 0;
};

inline Summary Summarize(std::vector<double> v) {
  Summary s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size()));
    return v[std::min(i, v.size() - 1)];
  };
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.p50 = at(0.50);
  s.p95 = at(0.95);
  s.p99 = at(0.99);
  s.min = v.front();
  s.max = v.back();
  return s;
}

}  // namespace airlock::bench
