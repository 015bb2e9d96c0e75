#include "csv_rows.h"

#include <charconv>
#include <cmath>

#include "credential.h"
#include "http_util.h"
#include "json_rows.h"

namespace airlock::tunnels::https {
namespace {

template <typename T>
void AppendNumber(std::string& out, T value) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec == std::errc()) out.append(buf, end);
}

void AppendDouble(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "Infinity" : "-Infinity";
  } else {
    AppendNumber(out, value);
  }
}

bool NeedsQuotes(std::string_view text) {
  return text.empty() || text.find_first_of(",\"\r\n") != std::string_view::npos;
}

void AppendValue(std::string& out, const arrow::BatchView& view, size_t col, size_t row) {
  if (view.IsNull(col, row)) return;  // NULL: an empty field
  const arrow::Field& field = view.field(col);
  switch (field.type) {
    case arrow::Type::kNull:
      return;
    case arrow::Type::kBool:
      out += view.GetBool(col, row) ? "true" : "false";
      return;
    case arrow::Type::kInt32:
      return AppendNumber(out, view.GetInt32(col, row));
    case arrow::Type::kInt64:
      return AppendNumber(out, view.GetInt64(col, row));
    case arrow::Type::kFloat64:
      return AppendDouble(out, view.GetDouble(col, row));
    case arrow::Type::kUtf8:
      return AppendCsvTextField(out, view.GetString(col, row));
    case arrow::Type::kBinary:
      return AppendCsvTextField(out, Base64(view.GetString(col, row)));
    case arrow::Type::kDate32:
      return AppendCsvTextField(out, arrow::FormatDate32(view.GetDate32(col, row)));
    case arrow::Type::kTimestampMicros:
      return AppendCsvTextField(out,
                                IsoTimestamp(view.GetTimestamp(col, row), !field.timezone.empty()));
    case arrow::Type::kTime64Micros:
      return AppendCsvTextField(out, arrow::FormatTime(view.GetTime(col, row)));
  }
}

}  // namespace

bool LooksLikeFormula(std::string_view text) {
  if (text.empty()) return false;
  switch (text.front()) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
      return true;
    default:
      return false;
  }
}

void AppendCsvTextField(std::string& out, std::string_view text) {
  std::string cell;
  cell.reserve(text.size() + 1);
  if (LooksLikeFormula(text)) cell.push_back('\'');
  AppendValidUtf8(cell, text);
  if (!NeedsQuotes(cell)) {
    out += cell;
    return;
  }
  out.push_back('"');
  for (char c : cell) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string CsvHeader(const std::vector<arrow::Field>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i != 0) out.push_back(',');
    AppendCsvTextField(out, fields[i].name);
  }
  out += "\r\n";
  return out;
}

void AppendRowCsv(std::string& out, const arrow::BatchView& view, size_t row) {
  for (size_t col = 0; col < view.num_columns(); ++col) {
    if (col != 0) out.push_back(',');
    AppendValue(out, view, col, row);
  }
  out += "\r\n";
}

}  // namespace airlock::tunnels::https
