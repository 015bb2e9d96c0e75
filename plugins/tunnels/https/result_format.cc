#include "result_format.h"

#include "csv_rows.h"
#include "json_rows.h"

namespace airlock::tunnels::https {
namespace {

class JsonEncoder final : public ResultEncoder {
 public:
  std::string_view content_type() const override { return "application/json"; }

  std::string Begin(const std::vector<arrow::Field>& fields) override {
    return "{\"columns\":" + ColumnsJson(fields) + ",\"rows\":[";
  }

  void AppendRow(std::string& out, const arrow::BatchView& view, size_t row) override {
    if (!first_row_) out.push_back(',');
    first_row_ = false;
    AppendRowJson(out, view, row);
  }

  std::string End(uint64_t rows) override {
    return "],\"row_count\":" + std::to_string(rows) + "}";
  }

  std::string Failed(uint64_t rows, std::string_view code, std::string_view message) override {
    return "],\"row_count\":" + std::to_string(rows) + "," + ErrorMembers(code, message) + "}";
  }

  bool truncate_on_failure() const override { return false; }

 private:
  bool first_row_ = true;
};

class CsvEncoder final : public ResultEncoder {
 public:
  std::string_view content_type() const override {
    return "text/csv; charset=utf-8; header=present";
  }

  std::string Begin(const std::vector<arrow::Field>& fields) override { return CsvHeader(fields); }

  void AppendRow(std::string& out, const arrow::BatchView& view, size_t row) override {
    AppendRowCsv(out, view, row);
  }

  std::string End(uint64_t) override { return {}; }

  std::string Failed(uint64_t, std::string_view code, std::string_view message) override {
    std::string line = "#airlock-error,";
    AppendCsvTextField(line, code);
    line.push_back(',');
    AppendCsvTextField(line, message.substr(0, 1024));
    line += "\r\n";
    return line;
  }

  bool truncate_on_failure() const override { return true; }
};

}  // namespace

std::unique_ptr<ResultEncoder> MakeResultEncoder(ResultFormat format) {
  if (format == ResultFormat::kCsv) return std::make_unique<CsvEncoder>();
  return std::make_unique<JsonEncoder>();
}

}  // namespace airlock::tunnels::https
