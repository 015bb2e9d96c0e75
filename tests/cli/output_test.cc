#include "cli/output.h"

#include <gtest/gtest.h>

namespace airlock::cli {
namespace {

using nlohmann::json;

TEST(IngestionProgress, TheBarCountsDatasetsDoneAndTheRowsPulled) {
  const json progress = {{"orders", {{"state", "done"}, {"rows", 1200}}},
                         {"customers", {{"state", "pulling"}, {"rows", 34}}}};
  EXPECT_EQ(IngestionProgress(progress, 2), "[##########----------] 1/2 datasets, 1,234 rows");
  EXPECT_EQ(IngestionProgress(progress, 4), "[#####---------------] 1/4 datasets, 1,234 rows");
}

TEST(IngestionProgress, BeforeTheFirstReportAndWhenAllAreDone) {
  EXPECT_EQ(IngestionProgress(json::object(), 3), "[--------------------] 0/3 datasets, 0 rows");
  EXPECT_EQ(IngestionProgress(json(), 1), "[--------------------] 0/1 datasets, 0 rows");
  const json done = {{"a", {{"state", "done"}, {"rows", 1234567}}},
                     {"b", {{"state", "done"}, {"rows", 0}}}};
  EXPECT_EQ(IngestionProgress(done, 2), "[####################] 2/2 datasets, 1,234,567 rows");
}

TEST(IngestionProgress, OddReportsNeitherOverfillTheBarNorBreakTheCount) {
  // More done than asked (a stale count of datasets), rows not a number.
  const json odd = {{"a", {{"state", "done"}, {"rows", "many"}}},
                    {"b", {{"state", "done"}, {"rows", 100}}},
                    {"c", 7}};
  EXPECT_EQ(IngestionProgress(odd, 1), "[####################] 2/2 datasets, 100 rows");
}

TEST(ShortDuration, ReadsAsPeopleWriteDurations) {
  EXPECT_EQ(ShortDuration(3600), "1h");
  EXPECT_EQ(ShortDuration(5400), "1h30m");
  EXPECT_EQ(ShortDuration(45), "45s");
}

}  // namespace
}  // namespace airlock::cli
