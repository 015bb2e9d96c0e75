#include "kernel/core/metrics.h"

#include <set>

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
  std::string out;
  std::set<std::string> described;
  for (const auto& s : series_) {
    if (described.insert(s.name).second) {
      out += "# HELP " + s.name + " " + s.help + "\n";
      out += "# TYPE " + s.name + " " + s.type + "\n";
    }
    out += s.name;
    if (!s.labels.empty()) out += "{" + s.labels + "}";
    out += " " + std::to_string(s.counter.value()) + "\n";
  }
  return out;
}

}  // namespace airlock
