// Test connector: dataset "squares" of (n int64, label utf8), delivered in
// batches of two rows, honouring the scope's column list.
#include "airlock/cpp/plugin.hpp"

namespace {

using airlock::Result;
using airlock::Status;
namespace arrow = airlock::arrow;

class TestConnector : public airlock::sdk::Connector {
 public:
  static Result<std::unique_ptr<TestConnector>> Create(const airlock::Json& config,
                                                       const airlock::sdk::Host& host) {
    auto made = std::make_unique<TestConnector>();
    AIRLOCK_RETURN_IF_ERROR(airlock::json_read::Int(config, "rows", &made->rows_, false, "config"));
    made->host_ = host;
    return made;
  }

  Result<airlock::Catalog> Describe() override {
    airlock::DatasetInfo squares;
    squares.name = "squares";
    squares.description = "n and n*n";
    squares.columns = {{"n", "int64"}, {"label", "utf8"}};
    return airlock::Catalog{{squares}};
  }

  Status Pull(const airlock::PullSpec& spec, airlock::sdk::BatchSink& sink) override {
    if (spec.dataset != "squares") return Status::NotFound("no dataset '" + spec.dataset + "'");
    std::vector<arrow::Field> fields;
    const bool want_n = spec.scope.AllowsColumn("n");
    const bool want_label = spec.scope.AllowsColumn("label");
    if (want_n) fields.push_back({"n", arrow::Type::kInt64});
    if (want_label) fields.push_back({"label", arrow::Type::kUtf8});
    arrow::RecordBatchBuilder builder(fields);
    AIRLOCK_RETURN_IF_ERROR(sink.SendSchema(builder.MakeSchema()));
    host_.Info("pulling " + std::to_string(rows_) + " rows");
    uint64_t sent = 0;
    for (int64_t n = 1; n <= rows_; ++n) {
      size_t col = 0;
      if (want_n) builder.AppendInt64(col++, n * n);
      if (want_label) builder.AppendString(col++, "row-" + std::to_string(n));
      if (builder.rows() == 2 || n == rows_) {
        sent += builder.rows();
        AIRLOCK_RETURN_IF_ERROR(sink.SendBatch(builder.Finish()));
        sink.Progress(sent, 0);
        if (sink.cancelled()) return Status::Cancelled("pull cancelled");
      }
    }
    return Status::Ok();
  }

 private:
  int64_t rows_ = 5;
  airlock::sdk::Host host_;
};

}  // namespace

AIRLOCK_CONNECTOR_PLUGIN(TestConnector, "test-squares", "2.0.0", "Squares (tests only)", nullptr)
