// "sequence": a connector that generates rows (n, n*n, "row-<n>") for
// n = 1..rows. Written only against the installed SDK headers; it shows the
// whole contract of a connector: configuration, a catalog, and a scoped pull
// (only the approved columns, masked where asked, only the rows the filter
// admits) delivered as Arrow batches with progress and cancellation.
//
// Configuration: {"rows": N (0..10000000, default 10), "batch_rows": M (1..1048576, default 4096)}
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <airlock/cpp/masking.hpp>
#include <airlock/cpp/plugin.hpp>
#include <airlock/cpp/scope.hpp>

namespace sequence {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace arrow = airlock::arrow;
namespace scope = airlock::scope;

constexpr int64_t kMaxRows = 10'000'000;
constexpr int64_t kMaxBatchRows = 1 << 20;
constexpr const char* kDataset = "sequence";

// The dataset's columns, in source order (the indices Value getters use).
enum Column : size_t { kN = 0, kSquare = 1, kLabel = 2 };

std::vector<arrow::Field> SourceFields() {
  return {{"n", arrow::Type::kInt64, "", false},
          {"square", arrow::Type::kInt64, "", false},
          {"label", arrow::Type::kUtf8, "", false}};
}

class SequenceConnector : public airlock::sdk::Connector {
 public:
  static Result<std::unique_ptr<SequenceConnector>> Create(const Json& config,
                                                           const airlock::sdk::Host& host) {
    auto made = std::make_unique<SequenceConnector>();
    made->host_ = host;
    AIRLOCK_RETURN_IF_ERROR(airlock::json_read::Int(config, "rows", &made->rows_, false, "config"));
    AIRLOCK_RETURN_IF_ERROR(
        airlock::json_read::Int(config, "batch_rows", &made->batch_rows_, false, "config"));
    if (made->rows_ < 0 || made->rows_ > kMaxRows) {
      return Status::InvalidArgument("config.rows must be between 0 and " +
                                     std::to_string(kMaxRows));
    }
    if (made->batch_rows_ < 1 || made->batch_rows_ > kMaxBatchRows) {
      return Status::InvalidArgument("config.batch_rows must be between 1 and " +
                                     std::to_string(kMaxBatchRows));
    }
    return made;
  }

  Result<airlock::Catalog> Describe() override {
    airlock::DatasetInfo dataset;
    dataset.name = kDataset;
    dataset.object = kDataset;
    dataset.description = "n, n squared and a label for n = 1.." + std::to_string(rows_);
    for (const auto& field : SourceFields()) {
      dataset.columns.push_back({field.name, arrow::TypeName(field.type)});
    }
    return airlock::Catalog{{dataset}};
  }

  Status Pull(const airlock::PullSpec& spec, airlock::sdk::BatchSink& sink) override {
    if (spec.dataset != kDataset) {
      return Status::NotFound("the sequence connector has no dataset '" + spec.dataset + "'");
    }
    // Validates the scope against our columns and fails closed on anything
    // unknown (a column, a mask, a filter literal of the wrong type).
    AIRLOCK_ASSIGN_OR_RETURN(scope::ScopePlan plan,
                             scope::ScopePlan::Make(SourceFields(), spec.scope));
    arrow::RecordBatchBuilder builder(plan.output_fields(), static_cast<size_t>(batch_rows_));
    AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));

    scope::Masker masker;
    std::string label;
    std::string masked;
    uint64_t delivered = 0;
    uint64_t bytes = 0;
    auto flush = [&]() -> Status {
      if (builder.rows() == 0) return Status::Ok();
      delivered += builder.rows();
      bytes += builder.bytes();
      AIRLOCK_RETURN_IF_ERROR(sink.SendBatch(builder.Finish()));
      sink.Progress(delivered, bytes);
      if (sink.cancelled()) return Status::Cancelled("pull cancelled by the host");
      return Status::Ok();
    };

    for (int64_t n = 1; n <= rows_; ++n) {
      const int64_t square = n * n;  // n <= 10^7, so n*n fits in int64
      label = "row-" + std::to_string(n);
      auto value = [&](size_t column) -> scope::Value {
        switch (column) {
          case kN:
            return scope::Value::Int64(n);
          case kSquare:
            return scope::Value::Int64(square);
          case kLabel:
            return scope::Value::String(label);
        }
        return scope::Value::Null();
      };
      if (!plan.filter().Matches(value)) continue;
      for (size_t col = 0; col < plan.outputs().size(); ++col) {
        const scope::OutputColumn& output = plan.outputs()[col];
        const scope::Value cell = value(output.source);
        if (output.mask) {
          masker.Mask(*output.mask, cell, &masked);
          builder.AppendString(col, masked);
        } else if (cell.type == arrow::Type::kInt64) {
          builder.AppendInt64(col, cell.i);
        } else {
          builder.AppendString(col, cell.s);
        }
      }
      if (builder.rows() >= static_cast<size_t>(batch_rows_)) AIRLOCK_RETURN_IF_ERROR(flush());
    }
    AIRLOCK_RETURN_IF_ERROR(flush());
    host_.Info("delivered " + std::to_string(delivered) + " rows of " + kDataset);
    return Status::Ok();
  }

 private:
  airlock::sdk::Host host_;
  int64_t rows_ = 10;
  int64_t batch_rows_ = 4096;
};

}  // namespace sequence

AIRLOCK_CONNECTOR_PLUGIN(sequence::SequenceConnector, "sequence", "1.0.0",
                         "Generates (n, n*n, label) rows; an out-of-tree example",
                         R"({"type":"object","properties":{)"
                         R"("rows":{"type":"integer","minimum":0,"maximum":10000000},)"
                         R"("batch_rows":{"type":"integer","minimum":1,"maximum":1048576}},)"
                         R"("additionalProperties":false})")
