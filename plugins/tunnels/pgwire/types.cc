#include "types.h"

#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

#include "pg_datetime.h"
#include "sql_text.h"
#include "wire.h"

namespace airlock::tunnels::pgwire {
namespace {

// PostgreSQL counts dates and timestamps from 2000-01-01.
constexpr int32_t kPgEpochDays = 10957;
constexpr int64_t kPgEpochMicros = int64_t{kPgEpochDays} * 86400 * 1000000;

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

template <typename T>
void AppendNumber(std::string& out, T value) {
  char buf[40];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec == std::errc()) out.append(buf, end);
}

void AppendDouble(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "Infinity" : "-Infinity";
  } else {
    AppendNumber(out, value);  // shortest round-trip text, as extra_float_digits 1
  }
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    const uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])) != 0) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])) != 0) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string HexBlob(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "X'";
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 15]);
  }
  out.push_back('\'');
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Numeric(std::string text) {
  return text.starts_with('-') ? "(" + text + ")" : text;
}

std::optional<ParameterError> TextInteger(std::string_view raw, std::string* literal) {
  const std::string text = Trim(raw);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return ParameterError{"22P02", "invalid input syntax for type integer"};
  }
  *literal = Numeric(std::to_string(value));
  return std::nullopt;
}

std::optional<ParameterError> FloatLiteral(double value, std::string* literal) {
  if (std::isnan(value)) return ParameterError{"22023", "NaN parameters are not supported"};
  if (std::isinf(value)) {
    *literal = value > 0 ? "9e999" : "(-9e999)";
    return std::nullopt;
  }
  std::string text;
  AppendNumber(text, value);
  // Keep it a floating-point literal for the engine ("1" would be an integer).
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  *literal = Numeric(text);
  return std::nullopt;
}

std::optional<ParameterError> TextFloat(std::string_view raw, std::string* literal) {
  const std::string text = Lower(Trim(raw));
  if (text == "infinity" || text == "+infinity") return FloatLiteral(HUGE_VAL, literal);
  if (text == "-infinity") return FloatLiteral(-HUGE_VAL, literal);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || std::isnan(value) ||
      std::isinf(value)) {
    if (text == "nan") return ParameterError{"22023", "NaN parameters are not supported"};
    return ParameterError{"22P02", "invalid input syntax for type double precision"};
  }
  return FloatLiteral(value, literal);
}

std::optional<ParameterError> TextBool(std::string_view raw, std::string* literal) {
  const std::string text = Lower(Trim(raw));
  static constexpr std::string_view kTrue[] = {"t", "true", "y", "yes", "on", "1"};
  static constexpr std::string_view kFalse[] = {"f", "false", "n", "no", "off", "0"};
  for (auto t : kTrue) {
    if (text == t) {
      *literal = "TRUE";
      return std::nullopt;
    }
  }
  for (auto f : kFalse) {
    if (text == f) {
      *literal = "FALSE";
      return std::nullopt;
    }
  }
  return ParameterError{"22P02", "invalid input syntax for type boolean"};
}

std::optional<ParameterError> TextBytea(std::string_view text, std::string* literal) {
  if (!text.starts_with("\\x")) {  // escape format: taken as the raw bytes
    *literal = HexBlob(text);
    return std::nullopt;
  }
  std::string bytes;
  for (size_t i = 2; i < text.size();) {
    if (std::isspace(static_cast<unsigned char>(text[i])) != 0) {
      ++i;
      continue;
    }
    const int hi = HexValue(text[i]);
    const int lo = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
    if (hi < 0 || lo < 0) return ParameterError{"22P02", "invalid hexadecimal data for bytea"};
    bytes.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  *literal = HexBlob(bytes);
  return std::nullopt;
}

std::optional<ParameterError> StringLiteral(std::string_view text, std::string* literal) {
  if (text.find('\0') != std::string_view::npos) {
    return ParameterError{"22021", "parameter contains a NUL byte"};
  }
  if (!IsValidUtf8(text)) {
    return ParameterError{"22021", "parameter is not valid UTF-8"};
  }
  *literal = QuoteLiteral(text);
  return std::nullopt;
}

std::optional<ParameterError> BinaryValue(uint32_t type_oid, std::string_view v,
                                          std::string* literal) {
  const auto need = [&](size_t n) -> std::optional<ParameterError> {
    if (v.size() != n) {
      return ParameterError{"22P03", "binary parameter of type " + std::to_string(type_oid) +
                                         " must have " + std::to_string(n) + " bytes"};
    }
    return std::nullopt;
  };
  switch (type_oid) {
    case oid::kBool:
      if (auto e = need(1)) return e;
      *literal = v[0] != 0 ? "TRUE" : "FALSE";
      return std::nullopt;
    case oid::kInt2:
      if (auto e = need(2)) return e;
      *literal = Numeric(std::to_string(LoadInt16(v.data())));
      return std::nullopt;
    case oid::kInt4:
      if (auto e = need(4)) return e;
      *literal = Numeric(std::to_string(LoadInt32(v.data())));
      return std::nullopt;
    case oid::kOid:
      if (auto e = need(4)) return e;
      *literal = std::to_string(static_cast<uint32_t>(LoadInt32(v.data())));
      return std::nullopt;
    case oid::kInt8:
      if (auto e = need(8)) return e;
      *literal = Numeric(std::to_string(LoadInt64(v.data())));
      return std::nullopt;
    case oid::kFloat4: {
      if (auto e = need(4)) return e;
      const float f = std::bit_cast<float>(static_cast<uint32_t>(LoadInt32(v.data())));
      return FloatLiteral(static_cast<double>(f), literal);
    }
    case oid::kFloat8: {
      if (auto e = need(8)) return e;
      return FloatLiteral(std::bit_cast<double>(static_cast<uint64_t>(LoadInt64(v.data()))),
                          literal);
    }
    case oid::kBytea:
      *literal = HexBlob(v);
      return std::nullopt;
    case oid::kText:
    case oid::kVarchar:
    case oid::kBpchar:
    case oid::kName:
    case oid::kUnknown:
      return StringLiteral(v, literal);
    case oid::kDate: {
      if (auto e = need(4)) return e;
      *literal = QuoteLiteral(arrow::FormatDate32(LoadInt32(v.data()) + kPgEpochDays));
      return std::nullopt;
    }
    case oid::kTimestamp:
    case oid::kTimestamptz: {
      if (auto e = need(8)) return e;
      const int64_t micros = LoadInt64(v.data());
      if (micros > INT64_MAX - kPgEpochMicros) {
        return ParameterError{"22008", "timestamp parameter out of range"};
      }
      *literal = QuoteLiteral(arrow::FormatTimestamp(micros + kPgEpochMicros, false));
      return std::nullopt;
    }
    case oid::kTime: {
      if (auto e = need(8)) return e;
      *literal = QuoteLiteral(arrow::FormatTime(LoadInt64(v.data())));
      return std::nullopt;
    }
    case oid::kUnspecified:
      return ParameterError{"42P18", "a binary parameter needs a declared type"};
    default:
      return ParameterError{
          "0A000", "binary parameters of type " + std::to_string(type_oid) + " are not supported"};
  }
}

}  // namespace

uint32_t OidFor(const arrow::Field& field) {
  switch (field.type) {
    case arrow::Type::kBool:
      return oid::kBool;
    case arrow::Type::kInt32:
      return oid::kInt4;
    case arrow::Type::kInt64:
      return oid::kInt8;
    case arrow::Type::kFloat64:
      return oid::kFloat8;
    case arrow::Type::kBinary:
      return oid::kBytea;
    case arrow::Type::kDate32:
      return oid::kDate;
    case arrow::Type::kTimestampMicros:
      return field.timezone.empty() ? oid::kTimestamp : oid::kTimestamptz;
    case arrow::Type::kTime64Micros:
      return oid::kTime;
    case arrow::Type::kUtf8:
    case arrow::Type::kNull:
      return oid::kText;
  }
  return oid::kText;
}

int16_t TypeLength(uint32_t type_oid) {
  switch (type_oid) {
    case oid::kBool:
      return 1;
    case oid::kInt2:
      return 2;
    case oid::kInt4:
    case oid::kDate:
    case oid::kFloat4:
    case oid::kOid:
      return 4;
    case oid::kInt8:
    case oid::kFloat8:
    case oid::kTime:
    case oid::kTimestamp:
    case oid::kTimestamptz:
      return 8;
    default:
      return -1;
  }
}

void AppendText(std::string& out, const arrow::BatchView& view, size_t col, size_t row) {
  const arrow::Field& field = view.field(col);
  switch (field.type) {
    case arrow::Type::kNull:
      return;
    case arrow::Type::kBool:
      out.push_back(view.GetBool(col, row) ? 't' : 'f');
      return;
    case arrow::Type::kInt32:
      return AppendNumber(out, view.GetInt32(col, row));
    case arrow::Type::kInt64:
      return AppendNumber(out, view.GetInt64(col, row));
    case arrow::Type::kFloat64:
      return AppendDouble(out, view.GetDouble(col, row));
    case arrow::Type::kUtf8:
      out.append(view.GetString(col, row));
      return;
    case arrow::Type::kBinary: {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      for (char c : view.GetString(col, row)) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(kHex[u >> 4]);
        out.push_back(kHex[u & 15]);
      }
      return;
    }
    case arrow::Type::kDate32:
      out += arrow::FormatDate32(view.GetDate32(col, row));
      return;
    case arrow::Type::kTimestampMicros:
      return AppendPgDateTime(
          out, arrow::FormatTimestamp(view.GetTimestamp(col, row), !field.timezone.empty()));
    case arrow::Type::kTime64Micros:
      return AppendPgDateTime(out, arrow::FormatTime(view.GetTime(col, row)));
  }
}

void AppendBinary(std::string& out, const arrow::BatchView& view, size_t col, size_t row) {
  const arrow::Field& field = view.field(col);
  switch (field.type) {
    case arrow::Type::kNull:
      return;
    case arrow::Type::kBool:
      out.push_back(view.GetBool(col, row) ? '\1' : '\0');
      return;
    case arrow::Type::kInt32:
      return PutBigEndian(out, static_cast<uint32_t>(view.GetInt32(col, row)), 4);
    case arrow::Type::kInt64:
      return PutBigEndian(out, static_cast<uint64_t>(view.GetInt64(col, row)), 8);
    case arrow::Type::kFloat64:
      return PutBigEndian(out, std::bit_cast<uint64_t>(view.GetDouble(col, row)), 8);
    case arrow::Type::kUtf8:
    case arrow::Type::kBinary:
      out.append(view.GetString(col, row));
      return;
    case arrow::Type::kDate32:
      return PutBigEndian(out, static_cast<uint32_t>(view.GetDate32(col, row) - kPgEpochDays), 4);
    case arrow::Type::kTimestampMicros:
      return PutBigEndian(out, static_cast<uint64_t>(view.GetTimestamp(col, row) - kPgEpochMicros),
                          8);
    case arrow::Type::kTime64Micros:
      return PutBigEndian(out, static_cast<uint64_t>(view.GetTime(col, row)), 8);
  }
}

Result<std::vector<arrow::Field>> ResultFields(const arrow::OwnedSchema& schema) {
  if (!schema.valid() || schema->format == nullptr || std::string_view(schema->format) != "+s") {
    return Status::Internal("the channel sent a result schema that is not a struct");
  }
  if (schema->n_children > 0 && schema->children == nullptr) {
    return Status::Internal("the channel sent a struct schema without children");
  }
  std::vector<arrow::Field> fields;
  for (int64_t i = 0; i < schema->n_children; ++i) {
    if (schema->children[i] == nullptr) {
      return Status::Internal("the channel sent a NULL column schema");
    }
    AIRLOCK_ASSIGN_OR_RETURN(arrow::Field field, arrow::ParseField(*schema->children[i]));
    fields.push_back(std::move(field));
  }
  return fields;
}

ColumnPresentation PresentColumn(const arrow::Field& field, uint32_t translated) {
  ColumnPresentation p;
  p.type_oid = OidFor(field);
  const bool integer = field.type == arrow::Type::kInt32 || field.type == arrow::Type::kInt64;
  if (translated == oid::kBool && integer) {
    p.type_oid = oid::kBool;
    p.conversion = ColumnPresentation::Conversion::kIntegerAsBool;
  } else if ((translated == oid::kDate || translated == oid::kTimestamp ||
              translated == oid::kTimestamptz || translated == oid::kTime) &&
             field.type == arrow::Type::kUtf8) {
    p.type_oid = translated;
    p.conversion = ColumnPresentation::Conversion::kTextAsDateTime;
  }
  return p;
}

bool AppendPresented(std::string& out, const ColumnPresentation& presentation, int16_t format,
                     const arrow::BatchView& view, size_t col, size_t row) {
  switch (presentation.conversion) {
    case ColumnPresentation::Conversion::kNone:
      if (format == 1) {
        AppendBinary(out, view, col, row);
      } else {
        AppendText(out, view, col, row);
      }
      return true;
    case ColumnPresentation::Conversion::kIntegerAsBool: {
      const bool value = view.field(col).type == arrow::Type::kInt32 ? view.GetInt32(col, row) != 0
                                                                     : view.GetInt64(col, row) != 0;
      if (format == 1) {
        out.push_back(value ? '\1' : '\0');
      } else {
        out.push_back(value ? 't' : 'f');
      }
      return true;
    }
    case ColumnPresentation::Conversion::kTextAsDateTime:
      break;
  }
  const std::string_view text = view.GetString(col, row);
  const uint32_t type = presentation.type_oid;
  if (format != 1) {
    if (type == oid::kDate   ? !DateDays(text)
        : type == oid::kTime ? !TimeMicros(text)
                             : !TimestampMicros(text, type == oid::kTimestamptz)) {
      return false;
    }
    AppendPgDateTime(out, text);
    return true;
  }
  if (type == oid::kDate) {
    const auto days = DateDays(text);
    if (!days) return false;
    PutBigEndian(out, static_cast<uint32_t>(*days - kPgEpochDays), 4);
    return true;
  }
  if (type == oid::kTime) {
    const auto micros = TimeMicros(text);
    if (!micros) return false;
    PutBigEndian(out, static_cast<uint64_t>(*micros), 8);
    return true;
  }
  const auto micros = TimestampMicros(text, type == oid::kTimestamptz);
  if (!micros || *micros < INT64_MIN + kPgEpochMicros) return false;
  PutBigEndian(out, static_cast<uint64_t>(*micros - kPgEpochMicros), 8);
  return true;
}

std::optional<ParameterError> ParameterLiteral(uint32_t type_oid, int16_t format,
                                               std::optional<std::string_view> value,
                                               std::string* literal) {
  if (!value.has_value()) {
    *literal = "NULL";
    return std::nullopt;
  }
  if (format == 1) return BinaryValue(type_oid, *value, literal);
  if (format != 0) return ParameterError{"08P01", "unsupported parameter format code"};
  switch (type_oid) {
    case oid::kInt2:
    case oid::kInt4:
    case oid::kInt8:
    case oid::kOid:
      return TextInteger(*value, literal);
    case oid::kFloat4:
    case oid::kFloat8:
    case oid::kNumeric:
      return TextFloat(*value, literal);
    case oid::kBool:
      return TextBool(*value, literal);
    case oid::kBytea:
      return TextBytea(*value, literal);
    case oid::kDate:
    case oid::kTime:
    case oid::kTimestamp:
    case oid::kTimestamptz: {
      // Stored dates and times compare as text: only their one spelling matches.
      const std::optional<std::string> canonical =
          type_oid == oid::kDate   ? CanonicalDate(*value)
          : type_oid == oid::kTime ? CanonicalTime(*value)
                                   : CanonicalTimestamp(*value, type_oid == oid::kTimestamptz);
      if (!canonical.has_value()) {
        return ParameterError{"22007", "invalid input syntax for type " +
                                           std::string(type_oid == oid::kDate   ? "date"
                                                       : type_oid == oid::kTime ? "time"
                                                                                : "timestamp") +
                                           ": \"" + std::string(*value) + "\""};
      }
      *literal = QuoteLiteral(*canonical);
      return std::nullopt;
    }
    default:
      // text, varchar, unknown...: a quoted string; the engine converts it
      // where the context needs another type.
      return StringLiteral(*value, literal);
  }
}

}  // namespace airlock::tunnels::pgwire
