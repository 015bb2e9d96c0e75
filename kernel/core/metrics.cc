#include "kernel/core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace airlock {
namespace {

std::string FormatBound(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Metrics::Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Metrics::Histogram::Observe(double value) {
  if (!(value >= 0)) value = 0;  // NaN and negatives (clock steps) count as 0
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(static_cast<uint64_t>(std::llround(value * 1e9)), std::memory_order_relaxed);
}

void Metrics::Histogram::Render(const std::string& name, const std::string& labels,
                                std::string* out) const {
  const std::string prefix = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_.size() ? FormatBound(bounds_[i]) : "+Inf";
    *out += name + "_bucket{" + prefix + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  char sum[40];
  std::snprintf(sum, sizeof sum, "%.9g",
                static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9);
  *out += name + "_sum" + braces + " " + sum + "\n";
  *out += name + "_count" + braces + " " + std::to_string(count_.load(std::memory_order_relaxed)) +
          "\n";
}

std::vector<double> Metrics::LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> Metrics::PhaseBuckets() {
  return {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400};
}

Metrics::Histogram& Metrics::GetHistogram(const std::string& name, const std::string& help,
                                          const std::string& labels,
                                          const std::vector<double>& bounds) {
  std::lock_guard lock(mu_);
  for (auto& s : series_) {
    if (s.name == name && s.labels == labels && s.histogram) return *s.histogram;
  }
  series_.emplace_back();
  Series& s = series_.back();
  s.name = name;
  s.help = help;
  s.type = "histogram";
  s.labels = labels;
  s.histogram = std::make_unique<Histogram>(bounds);
  return *s.histogram;
}

Metrics::Counter& Metrics::Get(const std::string& name, const std::string& help,
                               const std::string& type, const std::string& labels) {
  std::lock_guard lock(mu_);
  for (auto& s : series_) {
    if (s.name == name && s.labels == labels) return s.counter;
  }
  series_.emplace_back();
  Series& s = series_.back();
  s.name = name;
  s.help = help;
  s.type = type;
  s.labels = labels;
  return s.counter;
}

void Metrics::AddCollector(std::function<void(Metrics&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::Render() const {
  std::vector<std::function<void(Metrics&)>> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  // Collectors register and set series themselves: outside the lock.
  for (const auto& collect : collectors) collect(const_cast<Metrics&>(*this));
  std::lock_guard lock(mu_);
  // A metric family's samples must be contiguous in the exposition format.
  std::vector<const Series*> ordered;
  ordered.reserve(series_.size());
  for (const auto& s : series_) ordered.push_back(&s);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const Series* a, const Series* b) { return a->name < b->name; });
  std::string out;
  const std::string* previous = nullptr;
  for (const Series* s : ordered) {
    if (previous == nullptr || *previous != s->name) {
      out += "# HELP " + s->name + " " + s->help + "\n";
      out += "# TYPE " + s->name + " " + s->type + "\n";
      previous = &s->name;
    }
    if (s->histogram) {
      s->histogram->Render(s->name, s->labels, &out);
      continue;
    }
    out += s->name;
    if (!s->labels.empty()) out += "{" + s->labels + "}";
    out += " " + std::to_string(s->counter.value()) + "\n";
  }
  return out;
}

}  // namespace airlock
