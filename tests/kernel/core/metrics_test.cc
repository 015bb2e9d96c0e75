#include "kernel/core/metrics.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/core/process_metrics.h"

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

TEST(Metrics, CollectorsSetTheirGaugesAtEveryRender) {
  Metrics m;
  int64_t level = 3;
  m.AddCollector([&level](Metrics& metrics) { metrics.Get("level", "Level", "gauge").Set(level); });
  EXPECT_NE(m.Render().find("\nlevel 3\n"), std::string::npos);
  level = 9;
  EXPECT_NE(m.Render().find("\nlevel 9\n"), std::string::npos);
}

TEST(Metrics, HistogramsRenderCumulativeBucketsSumAndCount) {
  Metrics m;
  Metrics::Histogram& h =
      m.GetHistogram("op_seconds", "Op time", "route=\"/a\"", std::vector<double>{0.1, 1});
  h.Observe(0.05);
  h.Observe(0.1);  // on a bound: in that bucket (le is inclusive)
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(&m.GetHistogram("op_seconds", "Op time", "route=\"/a\"", {}), &h);
  EXPECT_EQ(m.Render(),
            "# HELP op_seconds Op time\n# TYPE op_seconds histogram\n"
            "op_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
            "op_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
            "op_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
            "op_seconds_sum{route=\"/a\"} 7.65\n"
            "op_seconds_count{route=\"/a\"} 4\n");
}

// Each process gauge follows what it measures.
TEST(ProcessMetrics, GaugesFollowMemoryDescriptorsAndSqlite) {
  Metrics m;
  const auto value = [&](const char* name) {
    RefreshProcessGauges(m);
    return m.Get(name, "", "gauge").value();
  };
  const int64_t fds = value("process_open_fds");
  const int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(value("process_open_fds"), fds + 1);
  ::close(fd);

  const int64_t rss = value("process_resident_memory_bytes");
  const int64_t heap = value("airlock_heap_allocated_bytes");
  constexpr size_t kBlock = 64 << 20;
  auto block = std::make_unique<char[]>(kBlock);
  std::memset(block.get(), 1, kBlock);  // resident, not just reserved
  EXPECT_GE(value("process_resident_memory_bytes") - rss, int64_t{kBlock} * 9 / 10);
  EXPECT_GE(value("airlock_heap_allocated_bytes") - heap, int64_t{kBlock});
  block.reset();
  EXPECT_LT(value("airlock_heap_allocated_bytes") - heap, int64_t{kBlock} / 2);

  const int64_t sqlite = value("airlock_sqlite_memory_bytes");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE t (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                         "SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO t SELECT "
                         "randomblob(100) FROM n",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_GE(value("airlock_sqlite_memory_bytes") - sqlite, 2'000'000);
  EXPECT_GE(value("airlock_sqlite_memory_highwater_bytes"), value("airlock_sqlite_memory_bytes"));
  sqlite3_close(db);
  EXPECT_LT(value("airlock_sqlite_memory_bytes") - sqlite, 500'000);
}

}  // namespace
}  // namespace airlock
