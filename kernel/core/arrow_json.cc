#include "kernel/core/arrow_json.h"

#include <chrono>
#include <cmath>
#include <string>

namespace airlock {
namespace {

using nlohmann::json;

std::string TwoDigits(int64_t v) {
  return (v < 10 ? "0" : "") + std::to_string(v);
}

std::string Date(int64_t days) {
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  return std::to_string(static_cast<int>(ymd.year())) + "-" +
         TwoDigits(static_cast<unsigned>(ymd.month())) + "-" +
         TwoDigits(static_cast<unsigned>(ymd.day()));
}

std::string TimeOfDay(int64_t micros) {
  const int64_t seconds = micros / 1000000;
  std::string fraction = std::to_string(micros % 1000000);
  fraction.insert(0, 6 - fraction.size(), '0');
  return TwoDigits(seconds / 3600) + ":" + TwoDigits(seconds / 60 % 60) + ":" +
         TwoDigits(seconds % 60) + "." + fraction;
}

std::string Timestamp(int64_t micros, bool utc) {
  const int64_t per_day = int64_t{86400} * 1000000;
  int64_t days = micros / per_day;
  int64_t rest = micros % per_day;
  if (rest < 0) {
    rest += per_day;
    --days;
  }
  return Date(days) + "T" + TimeOfDay(rest) + (utc ? "Z" : "");
}

}  // namespace

json ArrowCellJson(const arrow::BatchView& view, size_t col, size_t row) {
  if (view.IsNull(col, row)) return nullptr;
  const arrow::Field& field = view.field(col);
  switch (field.type) {
    case arrow::Type::kBool:
      return view.GetBool(col, row);
    case arrow::Type::kInt32:
      return view.GetInt32(col, row);
    case arrow::Type::kInt64:
      return view.GetInt64(col, row);
    case arrow::Type::kFloat64: {
      const double v = view.GetDouble(col, row);
      if (!std::isfinite(v)) return nullptr;
      return v;
    }
    case arrow::Type::kUtf8:
      return std::string(view.GetString(col, row));
    case arrow::Type::kBinary: {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string out;
      for (unsigned char c : view.GetString(col, row)) {
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
      return out;
    }
    case arrow::Type::kDate32:
      return Date(view.GetDate32(col, row));
    case arrow::Type::kTimestampMicros:
      return Timestamp(view.GetTimestamp(col, row), !field.timezone.empty());
    case arrow::Type::kTime64Micros:
      return TimeOfDay(view.GetTime(col, row));
    case arrow::Type::kNull:
      return nullptr;
  }
  return nullptr;
}

json ArrowRowJson(const arrow::BatchView& view, size_t row) {
  json cells = json::array();
  for (size_t col = 0; col < view.num_columns(); ++col)
    cells.push_back(ArrowCellJson(view, col, row));
  return cells;
}

Result<json> ArrowColumnsJson(const ArrowSchema* schema) {
  json columns = json::array();
  for (int64_t i = 0; schema != nullptr && i < schema->n_children; ++i) {
    auto field = arrow::ParseField(*schema->children[i]);
    if (!field.ok()) return field.status();
    columns.push_back({{"name", field->name}, {"type", arrow::TypeName(field->type)}});
  }
  return columns;
}

Status JsonRowCollector::OnSchema(arrow::OwnedSchema schema) {
  schema_ = std::move(schema);
  AIRLOCK_ASSIGN_OR_RETURN(columns_, ArrowColumnsJson(schema_.get()));
  return Status::Ok();
}

Status JsonRowCollector::OnBatch(arrow::OwnedArray batch) {
  if (schema_.get() == nullptr) return Status::FailedPrecondition("a batch before the schema");
  AIRLOCK_ASSIGN_OR_RETURN(arrow::BatchView view,
                           arrow::BatchView::Make(*schema_.get(), *batch.get()));
  for (size_t row = 0; row < view.num_rows(); ++row) {
    if (rows_.size() >= max_rows_) {
      truncated_ = true;
      break;
    }
    rows_.push_back(ArrowRowJson(view, row));
  }
  return Status::Ok();
}

}  // namespace airlock
