// Arrow results as JSON values: what a job result file holds
// (job_results.h) and what the MCP endpoint's `query` tool answers.
//
// Values: bool, numbers (NaN and infinities as null), strings (invalid UTF-8
// is replaced when the document is dumped with error_handler_t::replace),
// binary as lowercase hex, date32 "YYYY-MM-DD", timestamps
// "YYYY-MM-DDTHH:MM:SS.ffffff" (with "Z" when the column has a zone), time64
// "HH:MM:SS.ffffff", NULL as null.
#pragma once

#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock {

nlohmann::json ArrowCellJson(const arrow::BatchView& view, size_t col, size_t row);
// One row as a JSON array of its cells.
nlohmann::json ArrowRowJson(const arrow::BatchView& view, size_t row);
// [{"name","type"}, ...] of a result's schema (empty for null).
Result<nlohmann::json> ArrowColumnsJson(const ArrowSchema* schema);

// Collects a result as {"columns":[...],"rows":[[...],...]} up to `max_rows`
// rows; past them it asks the producer to stop (IsCancelled) and says the
// result was truncated. Not thread-safe (one query's reader feeds it).
class JsonRowCollector final : public sdk::BatchConsumer {
 public:
  explicit JsonRowCollector(size_t max_rows) : max_rows_(max_rows) {}

  Status OnSchema(arrow::OwnedSchema schema) override;
  Status OnBatch(arrow::OwnedArray batch) override;
  bool IsCancelled() override { return truncated_; }

  const nlohmann::json& columns() const { return columns_; }
  nlohmann::json& rows() { return rows_; }
  // More rows were produced than kept.
  bool truncated() const { return truncated_; }

 private:
  size_t max_rows_;
  arrow::OwnedSchema schema_;
  nlohmann::json columns_ = nlohmann::json::array();
  nlohmann::json rows_ = nlohmann::json::array();
  bool truncated_ = false;
};

}  // namespace airlock
