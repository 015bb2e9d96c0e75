// Ingestion of a million generated rows: checks that all arrive and reports
// the rate (rows per second, spec sent to sealed) as a test property.
#include <chrono>
#include <cstdio>

#include <gtest/gtest.h>

#include "tests/kernel/enclave/enclave_test_support.h"

namespace airlock::enclave {
namespace {

using namespace test_support;  // NOLINT

double IngestAndTime(const Json& spec, uint64_t expected_rows) {
  InProcessEnclave enclave;
  EventLog log;
  enclave.StartClient(log.Events());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(enclave.client->SendSpec(spec).ok());
  Json outcome = log.WaitForOutcome(std::chrono::seconds(120));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(outcome.value("state", ""), "sealed") << outcome.dump();
  uint64_t rows = 0;
  for (const Json& t : outcome["tables"]) rows += t["rows"].get<uint64_t>();
  EXPECT_EQ(rows, expected_rows);
  CollectingConsumer count;
  EXPECT_TRUE(enclave.client
                  ->Query("SELECT count(*) FROM " + outcome["tables"][0]["name"].get<std::string>(),
                          count, std::chrono::seconds(30))
                  .ok());
  return static_cast<double>(expected_rows) / seconds;
}

TEST(IngestionRate, OneMillionNarrowRows) {
  const double rate = IngestAndTime(
      MakeSpec({GenDataset("big", {{"rows", 1000000}, {"shape", "narrow"}})}), 1000000);
  std::printf("ingestion: 1M rows (int64, float64, utf8), one dataset: %.0f rows/s\n", rate);
  RecordProperty("rows_per_second", static_cast<int>(rate));
}

TEST(IngestionRate, OneMillionRowsOfEveryType) {
  const double rate = IngestAndTime(MakeSpec({GenDataset("big", {{"rows", 1000000}})}), 1000000);
  std::printf("ingestion: 1M rows (10 columns, every type), one dataset: %.0f rows/s\n", rate);
  RecordProperty("rows_per_second", static_cast<int>(rate));
}

TEST(IngestionRate, TwoHalfMillionDatasetsInParallel) {
  const double rate =
      IngestAndTime(MakeSpec({GenDataset("left", {{"rows", 500000}, {"shape", "narrow"}}),
                              GenDataset("right", {{"rows", 500000}, {"shape", "narrow"}})}),
                    1000000);
  std::printf("ingestion: 2 x 500k rows (int64, float64, utf8): %.0f rows/s\n", rate);
  RecordProperty("rows_per_second", static_cast<int>(rate));
}

}  // namespace
}  // namespace airlock::enclave
