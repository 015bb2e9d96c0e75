#include "kernel/core/metrics.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(Metrics, RendersFamiliesContiguouslyInPrometheusFormat) {
  Metrics m;
  m.Get("b_total", "B things", "counter", "x=\"1\"").Add(2);
  m.Get("a_gauge", "A gauge", "gauge").Set(7);
  m.Get("b_total", "B things", "counter", "x=\"2\"").Add();
  m.Get("b_total", "B things", "counter", "x=\"1\"").Add(3);  // same series again
  const std::string text = m.Render();
  EXPECT_EQ(text,
            "# HELP a_gauge A gauge\n# TYPE a_gauge gauge\na_gauge 7\n"
            "# HELP b_total B things\n# TYPE b_total counter\n"
            "b_total{x=\"1\"} 5\nb_total{x=\"2\"} 1\n");
}

}  // namespace
}  // namespace airlock
