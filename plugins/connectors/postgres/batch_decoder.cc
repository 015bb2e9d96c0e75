#include "batch_decoder.h"

#include <cstring>
#include <limits>
#include <string>

namespace airlock::connectors::postgres {
namespace {

template <typename T>
T LoadBigEndian(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  if constexpr (sizeof(T) == 2) {
    return static_cast<T>(__builtin_bswap16(static_cast<uint16_t>(value)));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(static_cast<uint32_t>(value)));
  } else {
    return static_cast<T>(__builtin_bswap64(static_cast<uint64_t>(value)));
  }
}

double LoadFloat8(const char* p) {
  const uint64_t bits = LoadBigEndian<uint64_t>(p);
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

float LoadFloat4(const char* p) {
  const uint32_t bits = LoadBigEndian<uint32_t>(p);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// date: days since 2000-01-01; +/-infinity are INT32_MAX / INT32_MIN and stay
// at those extremes.
int32_t DateDays(int32_t pg) {
  if (pg == std::numeric_limits<int32_t>::max() || pg == std::numeric_limits<int32_t>::min()) {
    return pg;
  }
  return pg + kPgEpochDays;
}

// timestamp[tz]: microseconds since 2000-01-01; +/-infinity are INT64_MAX /
// INT64_MIN and stay at those extremes.
int64_t TimestampMicros(int64_t pg) {
  if (pg == std::numeric_limits<int64_t>::max() || pg == std::numeric_limits<int64_t>::min()) {
    return pg;
  }
  return pg + kPgEpochMicros;
}

void FormatUuid(const char* p, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    const auto byte = static_cast<unsigned char>(p[i]);
    out[o++] = kHex[byte >> 4];
    out[o++] = kHex[byte & 0xF];
  }
}

Status BadWidth(int column, int length) {
  return Status::Internal("result column " + std::to_string(column) + " has a value of " +
                          std::to_string(length) + " bytes, which its type does not allow");
}

}  // namespace

Status AppendRows(const PGresult* result, const std::vector<Kind>& decode,
                  arrow::RecordBatchBuilder& builder) {
  const int rows = PQntuples(result);
  if (PQnfields(result) != static_cast<int>(decode.size())) {
    return Status::Internal("the source returned " + std::to_string(PQnfields(result)) +
                            " columns, " + std::to_string(decode.size()) + " were planned");
  }
  // Column by column: one type switch per column, not per cell.
  for (int c = 0; c < static_cast<int>(decode.size()); ++c) {
    const size_t col = static_cast<size_t>(c);
    const Kind kind = decode[col];
    size_t width = 0;
    switch (kind) {
      case Kind::kInt16:
        width = 2;
        break;
      case Kind::kInt32:
      case Kind::kOid:
      case Kind::kFloat32:
      case Kind::kDate:
        width = 4;
        break;
      case Kind::kInt64:
      case Kind::kFloat64:
      case Kind::kTime:
      case Kind::kTimestamp:
      case Kind::kTimestampTz:
        width = 8;
        break;
      case Kind::kBool:
        width = 1;
        break;
      case Kind::kUuid:
        width = 16;
        break;
      default:
        width = 0;
        break;  // variable
    }
    for (int r = 0; r < rows; ++r) {
      // libpq gives NULL cells length 0, so only an empty value needs the
      // NULL test (one library call per cell fewer on the hot path).
      const int length = PQgetlength(result, r, c);
      if (length == 0 && PQgetisnull(result, r, c)) {
        builder.AppendNull(col);
        continue;
      }
      const char* v = PQgetvalue(result, r, c);
      if (width != 0 && static_cast<size_t>(length) != width) return BadWidth(c, length);
      switch (kind) {
        case Kind::kInt16:
          builder.AppendInt32(col, LoadBigEndian<int16_t>(v));
          break;
        case Kind::kInt32:
          builder.AppendInt32(col, LoadBigEndian<int32_t>(v));
          break;
        case Kind::kOid:
          builder.AppendInt64(col, LoadBigEndian<uint32_t>(v));
          break;
        case Kind::kInt64:
          builder.AppendInt64(col, LoadBigEndian<int64_t>(v));
          break;
        case Kind::kFloat32:
          builder.AppendDouble(col, static_cast<double>(LoadFloat4(v)));
          break;
        case Kind::kFloat64:
          builder.AppendDouble(col, LoadFloat8(v));
          break;
        case Kind::kBool:
          builder.AppendBool(col, v[0] != 0);
          break;
        case Kind::kDate:
          builder.AppendDate32(col, DateDays(LoadBigEndian<int32_t>(v)));
          break;
        case Kind::kTime:
          builder.AppendTime(col, LoadBigEndian<int64_t>(v));
          break;
        case Kind::kTimestamp:
        case Kind::kTimestampTz:
          builder.AppendTimestamp(col, TimestampMicros(LoadBigEndian<int64_t>(v)));
          break;
        case Kind::kUuid: {
          char text[36];
          FormatUuid(v, text);
          builder.AppendString(col, std::string_view(text, sizeof text));
          break;
        }
        case Kind::kText:
        case Kind::kServerText:
        case Kind::kArrayJson:
        case Kind::kBytea:
          if (!builder.AppendString(col, std::string_view(v, static_cast<size_t>(length)))) {
            return Status::ResourceExhausted("a batch column exceeds 2 GiB; lower batch_rows");
          }
          break;
        case Kind::kUnsupported:
          return Status::Internal("an unsupported column reached the decoder");
      }
    }
  }
  return Status::Ok();
}

}  // namespace airlock::connectors::postgres
