#include "kernel/core/metrics.h"

#include <algorithm>
#include <vector>

namespace airlock {

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

std::string Metrics::Render() const {
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
    out += s->name;
    if (!s->labels.empty()) out += "{" + s->labels + "}";
    out += " " + std::to_string(s->counter.value()) + "\n";
  }
  return out;
}

}  // namespace airlock
