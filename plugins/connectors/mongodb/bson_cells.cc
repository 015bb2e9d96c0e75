#include "bson_cells.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace airlock::connectors::mongodb {
namespace {

enum Seen : uint32_t {
  kSeenNull = 1u << 0,
  kSeenOid = 1u << 1,
  kSeenInt32 = 1u << 2,
  kSeenInt64 = 1u << 3,
  kSeenDouble = 1u << 4,
  kSeenDecimal = 1u << 5,
  kSeenBool = 1u << 6,
  kSeenString = 1u << 7,
  kSeenDate = 1u << 8,
  kSeenBinary = 1u << 9,
  kSeenDocument = 1u << 10,
  kSeenArray = 1u << 11,
  kSeenUnsupported = 1u << 12,
};

uint32_t SeenOf(bson_type_t type) {
  switch (type) {
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
      return kSeenNull;
    case BSON_TYPE_OID:
      return kSeenOid;
    case BSON_TYPE_INT32:
      return kSeenInt32;
    case BSON_TYPE_INT64:
      return kSeenInt64;
    case BSON_TYPE_DOUBLE:
      return kSeenDouble;
    case BSON_TYPE_DECIMAL128:
      return kSeenDecimal;
    case BSON_TYPE_BOOL:
      return kSeenBool;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
      return kSeenString;
    case BSON_TYPE_DATE_TIME:
      return kSeenDate;
    case BSON_TYPE_BINARY:
      return kSeenBinary;
    case BSON_TYPE_DOCUMENT:
      return kSeenDocument;
    case BSON_TYPE_ARRAY:
      return kSeenArray;
    default:
      return kSeenUnsupported;
  }
}

Kind KindOf(uint32_t seen) {
  seen &= ~static_cast<uint32_t>(kSeenNull);
  switch (seen) {
    case kSeenOid:
      return Kind::kObjectId;
    case kSeenInt32:
      return Kind::kInt32;
    case kSeenInt64:
    case kSeenInt32 | kSeenInt64:
      return Kind::kInt64;
    case kSeenDouble:
    case kSeenDouble | kSeenInt32:
    case kSeenDouble | kSeenInt64:
    case kSeenDouble | kSeenInt32 | kSeenInt64:
      return Kind::kDouble;
    case kSeenDecimal:
      return Kind::kDecimal;
    case kSeenBool:
      return Kind::kBool;
    case kSeenString:
      return Kind::kString;
    case kSeenDate:
      return Kind::kDate;
    case kSeenBinary:
      return Kind::kBinary;
    case kSeenDocument:
    case kSeenArray:
    case kSeenDocument | kSeenArray:
      return Kind::kJson;
    default:
      return Kind::kMixed;  // nothing but nulls, or conflicting types
  }
}

bool QueryableName(std::string_view name, NestedMode mode) {
  if (name.empty() || name.size() > 255 || name[0] == '$') return false;
  if (name.find('\0') != std::string_view::npos) return false;
  return mode == NestedMode::kFlatten || name.find('.') == std::string_view::npos;
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(p - buf));
}

// Shortest round-trip text; non-finite values as MongoDB spells them.
void AppendDouble(double v, std::string* out, bool keep_point) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v < 0 ? "-Infinity" : "Infinity");
    return;
  }
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view text(buf, static_cast<size_t>(p - buf));
  out->append(text);
  if (keep_point && text.find_first_of(".e") == std::string_view::npos) out->append(".0");
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendBase64(const uint8_t* data, size_t n, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b = (uint32_t{data[i]} << 16) | (i + 1 < n ? uint32_t{data[i + 1]} << 8 : 0) |
                       (i + 2 < n ? uint32_t{data[i + 2]} : 0);
    out->push_back(kAlphabet[(b >> 18) & 63]);
    out->push_back(kAlphabet[(b >> 12) & 63]);
    out->push_back(i + 1 < n ? kAlphabet[(b >> 6) & 63] : '=');
    out->push_back(i + 2 < n ? kAlphabet[b & 63] : '=');
  }
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ" for a date in milliseconds.
void AppendIsoDate(int64_t ms, std::string* out) {
  int64_t days = ms / 86400000;
  int64_t rem = ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  const arrow::CivilDate d = arrow::CivilFromDays(days);
  char buf[64];
  const int n =
      std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                    static_cast<long long>(d.year), d.month, d.day,
                    static_cast<long long>(rem / 3600000), static_cast<long long>(rem / 60000 % 60),
                    static_cast<long long>(rem / 1000 % 60), static_cast<long long>(rem % 1000));
  out->append(buf, static_cast<size_t>(n));
}

// Deeper nesting than MongoDB allows (100 levels) is refused rather than
// recursed into: the bytes come from the network.
constexpr int kMaxJsonDepth = 128;
thread_local int json_depth = 0;

bool AppendJsonDocument(const uint8_t* data, uint32_t len, bool array, std::string* out) {
  if (json_depth >= kMaxJsonDepth) return false;
  struct DepthGuard {
    DepthGuard() { ++json_depth; }
    ~DepthGuard() { --json_depth; }
  } guard;
  bson_iter_t child;
  if (!bson_iter_init_from_data(&child, data, len)) return false;
  out->push_back(array ? '[' : '{');
  bool first = true;
  while (bson_iter_next(&child)) {
    if (!first) out->push_back(',');
    first = false;
    if (!array) {
      AppendJsonString(bson_iter_key(&child), out);
      out->push_back(':');
    }
    if (!AppendJson(&child, out)) return false;
  }
  out->push_back(array ? ']' : '}');
  return true;
}

}  // namespace

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kObjectId:
      return "objectid";
    case Kind::kInt32:
      return "int32";
    case Kind::kInt64:
      return "int64";
    case Kind::kDouble:
      return "float64";
    case Kind::kDecimal:
      return "decimal";
    case Kind::kBool:
      return "bool";
    case Kind::kString:
      return "utf8";
    case Kind::kDate:
      return "timestamp";
    case Kind::kBinary:
      return "binary";
    case Kind::kJson:
      return "json";
    case Kind::kMixed:
      return "mixed";
  }
  return "mixed";
}

arrow::Type ArrowTypeOf(Kind kind) {
  switch (kind) {
    case Kind::kInt32:
      return arrow::Type::kInt32;
    case Kind::kInt64:
      return arrow::Type::kInt64;
    case Kind::kDouble:
      return arrow::Type::kFloat64;
    case Kind::kBool:
      return arrow::Type::kBool;
    case Kind::kDate:
      return arrow::Type::kTimestampMicros;
    case Kind::kBinary:
      return arrow::Type::kBinary;
    default:
      return arrow::Type::kUtf8;
  }
}

arrow::Field FieldOf(const std::string& name, Kind kind) {
  arrow::Field f;
  f.name = name;
  f.type = ArrowTypeOf(kind);
  if (kind == Kind::kDate) f.timezone = "UTC";
  f.nullable = true;
  return f;
}

const char* BsonTypeName(bson_type_t type) {
  switch (type) {
    case BSON_TYPE_DOUBLE:
      return "double";
    case BSON_TYPE_UTF8:
      return "string";
    case BSON_TYPE_DOCUMENT:
      return "document";
    case BSON_TYPE_ARRAY:
      return "array";
    case BSON_TYPE_BINARY:
      return "binary";
    case BSON_TYPE_UNDEFINED:
      return "undefined";
    case BSON_TYPE_OID:
      return "objectId";
    case BSON_TYPE_BOOL:
      return "bool";
    case BSON_TYPE_DATE_TIME:
      return "date";
    case BSON_TYPE_NULL:
      return "null";
    case BSON_TYPE_REGEX:
      return "regex";
    case BSON_TYPE_DBPOINTER:
      return "dbPointer";
    case BSON_TYPE_CODE:
      return "javascript";
    case BSON_TYPE_SYMBOL:
      return "symbol";
    case BSON_TYPE_CODEWSCOPE:
      return "javascriptWithScope";
    case BSON_TYPE_INT32:
      return "int32";
    case BSON_TYPE_TIMESTAMP:
      return "timestamp";
    case BSON_TYPE_INT64:
      return "int64";
    case BSON_TYPE_DECIMAL128:
      return "decimal128";
    case BSON_TYPE_MAXKEY:
      return "maxKey";
    case BSON_TYPE_MINKEY:
      return "minKey";
    default:
      return "unknown";
  }
}

void SchemaInferer::Add(const bson_t* document) {
  AddDocument(document, "");
}

void SchemaInferer::AddDocument(const bson_t* document, const std::string& prefix) {
  bson_iter_t it;
  if (!bson_iter_init(&it, document)) return;
  while (bson_iter_next(&it)) {
    const std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    std::string path = prefix + std::string(key);
    if (!QueryableName(key, mode_) ||
        (mode_ == NestedMode::kFlatten && key.find('.') != std::string_view::npos)) {
      if (std::find(skipped_.begin(), skipped_.end(), path) == skipped_.end()) {
        skipped_.push_back(path);
      }
      continue;
    }
    const bson_type_t type = bson_iter_type(&it);
    auto [slot, inserted] = paths_.try_emplace(path);
    if (inserted) slot->second.order = paths_.size();
    slot->second.seen |= SeenOf(type);
    if (SeenOf(type) == kSeenUnsupported && slot->second.unsupported == BSON_TYPE_EOD) {
      slot->second.unsupported = type;
    }
    if (mode_ == NestedMode::kFlatten && type == BSON_TYPE_DOCUMENT &&
        std::count(path.begin(), path.end(), '.') < 100) {
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      bson_iter_document(&it, &len, &data);
      bson_t sub;
      if (bson_init_static(&sub, data, len)) AddDocument(&sub, path + ".");
    }
  }
}

Result<std::vector<SourceColumn>> SchemaInferer::Finish(std::vector<std::string>* skipped) const {
  if (skipped != nullptr) *skipped = skipped_;
  std::vector<std::pair<size_t, SourceColumn>> ordered;
  std::vector<std::string> leaf_documents;  // flatten: documents that are also scalars elsewhere
  for (const auto& [path, stats] : paths_) {
    if (stats.seen & kSeenUnsupported) {
      return Status::TypeNotRepresentable("field '" + path + "' holds BSON " +
                                          BsonTypeName(stats.unsupported) +
                                          " values, which have no column type (declare the "
                                          "column as json to receive them as text)");
    }
    if (mode_ == NestedMode::kFlatten && (stats.seen & kSeenDocument)) {
      const uint32_t others = stats.seen & ~static_cast<uint32_t>(kSeenDocument | kSeenNull);
      if (others == 0) continue;  // only ever a document: its leaves are the columns
      leaf_documents.push_back(path + ".");
    }
    ordered.emplace_back(stats.order, SourceColumn{path, KindOf(stats.seen)});
  }
  std::vector<SourceColumn> columns;
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, column] : ordered) {
    bool under_leaf = false;
    for (const auto& prefix : leaf_documents) {
      under_leaf = under_leaf || column.name.compare(0, prefix.size(), prefix) == 0;
    }
    if (!under_leaf) columns.push_back(std::move(column));
  }
  return columns;
}

bool AppendJson(const bson_iter_t* it, std::string* out) {
  switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE: {
      const double v = bson_iter_double(it);
      if (std::isfinite(v)) {
        AppendDouble(v, out, true);
      } else {
        out->append("{\"$numberDouble\":\"");
        AppendDouble(v, out, false);
        out->append("\"}");
      }
      return true;
    }
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL: {
      uint32_t len = 0;
      const char* s = bson_iter_type(it) == BSON_TYPE_UTF8 ? bson_iter_utf8(it, &len)
                                                           : bson_iter_symbol(it, &len);
      AppendJsonString(std::string_view(s, len), out);
      return true;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      const bool array = bson_iter_type(it) == BSON_TYPE_ARRAY;
      if (array) {
        bson_iter_array(it, &len, &data);
      } else {
        bson_iter_document(it, &len, &data);
      }
      return AppendJsonDocument(data, len, array, out);
    }
    case BSON_TYPE_BINARY: {
      bson_subtype_t subtype;
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      bson_iter_binary(it, &subtype, &len, &data);
      char sub[8];
      std::snprintf(sub, sizeof sub, "%02x", static_cast<unsigned>(subtype));
      out->append("{\"$binary\":{\"base64\":\"");
      AppendBase64(data, len, out);
      out->append("\",\"subType\":\"").append(sub).append("\"}}");
      return true;
    }
    case BSON_TYPE_UNDEFINED:
      out->append("{\"$undefined\":true}");
      return true;
    case BSON_TYPE_OID: {
      char hex[25];
      bson_oid_to_string(bson_iter_oid(it), hex);
      out->append("{\"$oid\":\"").append(hex).append("\"}");
      return true;
    }
    case BSON_TYPE_BOOL:
      out->append(bson_iter_bool(it) ? "true" : "false");
      return true;
    case BSON_TYPE_DATE_TIME: {
      const int64_t ms = bson_iter_date_time(it);
      constexpr int64_t kYear10000 = 253402300800000;
      if (ms >= 0 && ms < kYear10000) {
        out->append("{\"$date\":\"");
        AppendIsoDate(ms, out);
        out->append("\"}");
      } else {
        out->append("{\"$date\":{\"$numberLong\":\"");
        AppendInt(ms, out);
        out->append("\"}}");
      }
      return true;
    }
    case BSON_TYPE_NULL:
      out->append("null");
      return true;
    case BSON_TYPE_REGEX: {
      const char* options = nullptr;
      const char* pattern = bson_iter_regex(it, &options);
      out->append("{\"$regularExpression\":{\"pattern\":");
      AppendJsonString(pattern, out);
      out->append(",\"options\":");
      AppendJsonString(options != nullptr ? options : "", out);
      out->append("}}");
      return true;
    }
    case BSON_TYPE_CODE: {
      uint32_t len = 0;
      const char* code = bson_iter_code(it, &len);
      out->append("{\"$code\":");
      AppendJsonString(std::string_view(code, len), out);
      out->push_back('}');
      return true;
    }
    case BSON_TYPE_INT32:
      AppendInt(bson_iter_int32(it), out);
      return true;
    case BSON_TYPE_TIMESTAMP: {
      uint32_t t = 0, i = 0;
      bson_iter_timestamp(it, &t, &i);
      out->append("{\"$timestamp\":{\"t\":");
      AppendInt(t, out);
      out->append(",\"i\":");
      AppendInt(i, out);
      out->append("}}");
      return true;
    }
    case BSON_TYPE_INT64:
      AppendInt(bson_iter_int64(it), out);
      return true;
    case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t d;
      bson_iter_decimal128(it, &d);
      char text[BSON_DECIMAL128_STRING];
      bson_decimal128_to_string(&d, text);
      out->append("{\"$numberDecimal\":\"").append(text).append("\"}");
      return true;
    }
    case BSON_TYPE_MAXKEY:
      out->append("{\"$maxKey\":1}");
      return true;
    case BSON_TYPE_MINKEY:
      out->append("{\"$minKey\":1}");
      return true;
    default:
      return false;  // DBPointer, code with scope
  }
}

bool ToValue(Kind kind, const bson_iter_t* it, std::string* scratch, scope::Value* out) {
  const bson_type_t type = bson_iter_type(it);
  if (type == BSON_TYPE_NULL || type == BSON_TYPE_UNDEFINED) {
    *out = scope::Value::Null();
    return true;
  }
  auto text = [&](arrow::Type t = arrow::Type::kUtf8) {
    *out = scope::Value::String(*scratch);
    out->type = t;
    return true;
  };
  switch (kind) {
    case Kind::kObjectId: {
      if (type != BSON_TYPE_OID) return false;
      static constexpr char kHex[] = "0123456789abcdef";
      const uint8_t* bytes = bson_iter_oid(it)->bytes;
      scratch->resize(24);
      for (size_t i = 0; i < 12; ++i) {
        (*scratch)[2 * i] = kHex[bytes[i] >> 4];
        (*scratch)[2 * i + 1] = kHex[bytes[i] & 0xF];
      }
      return text();
    }
    case Kind::kInt32: {
      int64_t v = 0;
      if (type == BSON_TYPE_INT32) {
        v = bson_iter_int32(it);
      } else if (type == BSON_TYPE_INT64) {
        v = bson_iter_int64(it);
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
          return false;
        }
      } else {
        return false;
      }
      *out = scope::Value::Int64(v);
      out->type = arrow::Type::kInt32;
      return true;
    }
    case Kind::kInt64:
      if (type == BSON_TYPE_INT32) {
        *out = scope::Value::Int64(bson_iter_int32(it));
      } else if (type == BSON_TYPE_INT64) {
        *out = scope::Value::Int64(bson_iter_int64(it));
      } else {
        return false;
      }
      return true;
    case Kind::kDouble: {
      constexpr int64_t kExact = int64_t{1} << 53;
      if (type == BSON_TYPE_DOUBLE) {
        *out = scope::Value::Float64(bson_iter_double(it));
      } else if (type == BSON_TYPE_INT32) {
        *out = scope::Value::Float64(bson_iter_int32(it));
      } else if (type == BSON_TYPE_INT64) {
        const int64_t v = bson_iter_int64(it);
        if (v > kExact || v < -kExact) return false;  // would not round-trip
        *out = scope::Value::Float64(static_cast<double>(v));
      } else {
        return false;
      }
      return true;
    }
    case Kind::kDecimal: {
      scratch->clear();
      if (type == BSON_TYPE_DECIMAL128) {
        bson_decimal128_t d;
        bson_iter_decimal128(it, &d);
        char buf[BSON_DECIMAL128_STRING];
        bson_decimal128_to_string(&d, buf);
        scratch->assign(buf);
      } else if (type == BSON_TYPE_INT32 || type == BSON_TYPE_INT64) {
        AppendInt(bson_iter_as_int64(it), scratch);
      } else {
        return false;
      }
      return text();
    }
    case Kind::kBool:
      if (type != BSON_TYPE_BOOL) return false;
      *out = scope::Value::Bool(bson_iter_bool(it));
      return true;
    case Kind::kString: {
      uint32_t len = 0;
      const char* s = nullptr;
      if (type == BSON_TYPE_UTF8) {
        s = bson_iter_utf8(it, &len);
      } else if (type == BSON_TYPE_SYMBOL) {
        s = bson_iter_symbol(it, &len);
      } else {
        return false;
      }
      *out = scope::Value::String(std::string_view(s, len));
      return true;
    }
    case Kind::kDate: {
      if (type != BSON_TYPE_DATE_TIME) return false;
      const int64_t ms = bson_iter_date_time(it);
      constexpr int64_t kLimit = std::numeric_limits<int64_t>::max() / 1000;
      if (ms > kLimit || ms < -kLimit) return false;
      *out = scope::Value::Timestamp(ms * 1000);
      return true;
    }
    case Kind::kBinary: {
      if (type != BSON_TYPE_BINARY) return false;
      bson_subtype_t subtype;
      uint32_t len = 0;
      const uint8_t* data = nullptr;
      bson_iter_binary(it, &subtype, &len, &data);
      *out = scope::Value::String(std::string_view(reinterpret_cast<const char*>(data), len));
      out->type = arrow::Type::kBinary;
      return true;
    }
    case Kind::kJson:
      scratch->clear();
      if (!AppendJson(it, scratch)) return false;
      return text();
    case Kind::kMixed:
      scratch->clear();
      switch (type) {
        case BSON_TYPE_UTF8:
        case BSON_TYPE_SYMBOL:
          return ToValue(Kind::kString, it, scratch, out);
        case BSON_TYPE_INT32:
        case BSON_TYPE_INT64:
          AppendInt(bson_iter_as_int64(it), scratch);
          return text();
        case BSON_TYPE_DOUBLE:
          AppendDouble(bson_iter_double(it), scratch, false);
          return text();
        case BSON_TYPE_BOOL:
          scratch->assign(bson_iter_bool(it) ? "true" : "false");
          return text();
        case BSON_TYPE_OID:
          return ToValue(Kind::kObjectId, it, scratch, out);
        case BSON_TYPE_DECIMAL128:
          return ToValue(Kind::kDecimal, it, scratch, out);
        case BSON_TYPE_DATE_TIME:
          AppendIsoDate(bson_iter_date_time(it), scratch);
          return text();
        default:
          if (!AppendJson(it, scratch)) return false;
          return text();
      }
  }
  return false;
}

}  // namespace airlock::connectors::mongodb
