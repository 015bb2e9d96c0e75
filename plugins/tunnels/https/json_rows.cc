#include "json_rows.h"

#include <charconv>
#include <cmath>

#include "credential.h"
#include "http_util.h"

namespace airlock::tunnels::https {
namespace {

template <typename T>
void AppendNumber(std::string& out, T value) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec == std::errc())
    out.append(buf, end);
  else
    out += "null";
}

void AppendDouble(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    AppendNumber(out, value);  // shortest text that reads back as the same double
  }
}

void AppendTimestamp(std::string& out, int64_t micros, bool utc) {
  out.push_back('"');
  out += IsoTimestamp(micros, utc);
  out.push_back('"');
}

void AppendValue(std::string& out, const arrow::BatchView& view, size_t col, size_t row) {
  if (view.IsNull(col, row)) {
    out += "null";
    return;
  }
  const arrow::Field& field = view.field(col);
  switch (field.type) {
    case arrow::Type::kNull:
      out += "null";
      break;
    case arrow::Type::kBool:
      out += view.GetBool(col, row) ? "true" : "false";
      break;
    case arrow::Type::kInt32:
      AppendNumber(out, view.GetInt32(col, row));
      break;
    case arrow::Type::kInt64:
      AppendNumber(out, view.GetInt64(col, row));
      break;
    case arrow::Type::kFloat64:
      AppendDouble(out, view.GetDouble(col, row));
      break;
    case arrow::Type::kUtf8:
      AppendJsonString(out, view.GetString(col, row));
      break;
    case arrow::Type::kBinary:
      out.push_back('"');
      out += Base64(view.GetString(col, row));
      out.push_back('"');
      break;
    case arrow::Type::kDate32:
      out.push_back('"');
      out += arrow::FormatDate32(view.GetDate32(col, row));
      out.push_back('"');
      break;
    case arrow::Type::kTimestampMicros:
      AppendTimestamp(out, view.GetTimestamp(col, row), !field.timezone.empty());
      break;
    case arrow::Type::kTime64Micros:
      out.push_back('"');
      out += arrow::FormatTime(view.GetTime(col, row));
      out.push_back('"');
      break;
  }
}

}  // namespace

std::string IsoTimestamp(int64_t micros, bool utc) {
  std::string text = arrow::FormatTimestamp(micros, /*with_tz=*/false);
  if (auto space = text.find(' '); space != std::string::npos) text[space] = 'T';
  if (utc) text.push_back('Z');
  return text;
}

std::string ColumnsJson(const std::vector<arrow::Field>& fields) {
  std::string out = "[";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i != 0) out.push_back(',');
    out += "{\"name\":";
    AppendJsonString(out, fields[i].name);
    out += ",\"type\":";
    AppendJsonString(out, arrow::TypeName(fields[i].type));
    if (fields[i].type == arrow::Type::kTimestampMicros && !fields[i].timezone.empty()) {
      out += ",\"timezone\":";
      AppendJsonString(out, fields[i].timezone);
    }
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

void AppendRowJson(std::string& out, const arrow::BatchView& view, size_t row) {
  out.push_back('[');
  for (size_t col = 0; col < view.num_columns(); ++col) {
    if (col != 0) out.push_back(',');
    AppendValue(out, view, col, row);
  }
  out.push_back(']');
}

}  // namespace airlock::tunnels::https
