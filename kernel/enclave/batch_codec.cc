#include "kernel/enclave/batch_codec.h"

#include <bit>
#include <cstring>
#include <memory>
#include <utility>

namespace airlock {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the batch codec writes host memory as little-endian");

constexpr std::string_view kSchemaMagic = "ALS1";
constexpr std::string_view kBatchMagic = "ALB1";
constexpr uint8_t kNullableFlag = 1;

using arrow::Type;

uint64_t BitmapBytes(uint64_t bits) {
  return (bits + 7) / 8;
}

template <typename T>
void PutLE(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out->append(bytes, sizeof(T));
}

void AppendBytes(std::string* out, const void* bytes, size_t n) {
  if (n != 0) out->append(static_cast<const char*>(bytes), n);
}

// Zero bytes up to the next multiple of 8 counted from `start`.
void Pad8(std::string* out, size_t start) {
  const size_t rel = out->size() - start;
  out->append((8 - rel % 8) % 8, '\0');
}

// Clears the bits past `n` in the last byte of an n-bit bitmap.
void ClearTail(uint8_t* bits, uint64_t n) {
  if ((n & 7) != 0) bits[n >> 3] &= static_cast<uint8_t>((1u << (n & 7)) - 1);
}

// Writes bits [src_offset, src_offset + n) of `src` to bits [0, n) of the
// zeroed `dst`, leaving the tail bits of the last byte clear.
void CopyBits(const uint8_t* src, int64_t src_offset, uint64_t n, uint8_t* dst) {
  if (n == 0) return;
  if ((src_offset & 7) == 0) {
    std::memcpy(dst, src + (src_offset >> 3), BitmapBytes(n));
    ClearTail(dst, n);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (arrow::detail::GetBit(src, src_offset + static_cast<int64_t>(i))) {
      dst[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
    }
  }
}

// dst &= bits [src_offset, src_offset + n) of `src`.
void AndBits(const uint8_t* src, int64_t src_offset, uint64_t n, uint8_t* dst) {
  for (uint64_t i = 0; i < n; ++i) {
    if (!arrow::detail::GetBit(src, src_offset + static_cast<int64_t>(i))) {
      dst[i >> 3] &= static_cast<uint8_t>(~(1u << (i & 7)));
    }
  }
}

// Set bits among the first n bits.
uint64_t CountSetBits(const uint8_t* bits, uint64_t n) {
  uint64_t count = 0;
  const uint64_t full = n >> 3;
  for (uint64_t i = 0; i < full; ++i) count += static_cast<uint64_t>(std::popcount(bits[i]));
  if ((n & 7) != 0) {
    const auto tail = static_cast<uint8_t>(bits[full] & ((1u << (n & 7)) - 1));
    count += static_cast<uint64_t>(std::popcount(tail));
  }
  return count;
}

// Bounds-checked cursor over an untrusted payload.
class Reader {
 public:
  Reader(const uint8_t* base, size_t size) : base_(base), size_(size) {}

  bool Take(uint64_t n, const uint8_t** out) {
    if (n > size_ - pos_) return false;
    *out = base_ + pos_;
    pos_ += static_cast<size_t>(n);
    return true;
  }
  template <typename T>
  bool Read(T* value) {
    const uint8_t* p = nullptr;
    if (!Take(sizeof(T), &p)) return false;
    std::memcpy(value, p, sizeof(T));
    return true;
  }
  // Skips zero padding to the next multiple of 8 (relative to the base).
  bool Pad8() {
    const uint8_t* p = nullptr;
    const size_t pad = (8 - pos_ % 8) % 8;
    if (!Take(pad, &p)) return false;
    for (size_t i = 0; i < pad; ++i) {
      if (p[i] != 0) return false;
    }
    return true;
  }
  bool AtEnd() const { return pos_ == size_; }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

Status Malformed(std::string_view what) {
  return Status::InvalidArgument("malformed batch payload: " + std::string(what));
}

void EncodeColumn(const arrow::BatchView& batch, size_t col, size_t start, std::string* out) {
  const arrow::BatchView::Column& c = batch.column(col);
  const uint64_t rows = batch.num_rows();
  const size_t header = out->size();
  out->push_back(static_cast<char>(c.type));
  out->append(7, '\0');  // has_validity (patched below) + reserved
  if (c.type == Type::kNull) return;

  if (c.validity != nullptr || batch.row_validity() != nullptr) {
    const size_t pos = out->size();
    const size_t n_bytes = BitmapBytes(rows);
    out->append(n_bytes, '\0');
    auto* dst = reinterpret_cast<uint8_t*>(out->data() + pos);
    if (c.validity != nullptr) {
      CopyBits(c.validity, c.offset, rows, dst);
    } else if (n_bytes != 0) {
      std::memset(dst, 0xFF, n_bytes);
      ClearTail(dst, rows);
    }
    if (batch.row_validity() != nullptr)
      AndBits(batch.row_validity(), batch.row_offset(), rows, dst);
    if (CountSetBits(dst, rows) == rows) {
      out->resize(pos);  // no nulls after all: omit the bitmap
    } else {
      (*out)[header + 1] = 1;
      Pad8(out, start);
    }
  }

  if (c.type == Type::kBool) {
    const size_t pos = out->size();
    out->append(BitmapBytes(rows), '\0');
    CopyBits(c.values, c.offset, rows, reinterpret_cast<uint8_t*>(out->data() + pos));
    Pad8(out, start);
  } else if (arrow::IsVarSize(c.type)) {
    const auto* offsets = reinterpret_cast<const uint8_t*>(c.offsets);
    const int32_t base = rows != 0 ? arrow::detail::LoadValue<int32_t>(offsets, c.offset) : 0;
    const size_t pos = out->size();
    out->resize(pos + (rows + 1) * sizeof(int32_t));
    char* dst = out->data() + pos;
    for (uint64_t r = 0; r <= rows; ++r) {
      const int32_t rebased = rows != 0 ? arrow::detail::LoadValue<int32_t>(
                                              offsets, c.offset + static_cast<int64_t>(r)) -
                                              base
                                        : 0;
      std::memcpy(dst + r * sizeof(int32_t), &rebased, sizeof(int32_t));
    }
    Pad8(out, start);
    int32_t last = 0;
    std::memcpy(&last, out->data() + pos + rows * sizeof(int32_t), sizeof(int32_t));
    const uint64_t data_len = static_cast<uint64_t>(last);
    PutLE<uint64_t>(out, data_len);
    if (data_len != 0) AppendBytes(out, c.data + base, data_len);
    Pad8(out, start);
  } else {
    const size_t width = arrow::FixedWidth(c.type);
    if (rows != 0) AppendBytes(out, c.values + static_cast<size_t>(c.offset) * width, rows * width);
    Pad8(out, start);
  }
}

// Buffers of one decoded column, pointing into the payload.
struct DecodedColumn {
  int64_t null_count = 0;
  std::vector<const void*> buffers;
};

Result<DecodedColumn> DecodeColumn(const arrow::Field& field, uint64_t rows, Reader& reader) {
  auto bad = [&](std::string_view what) {
    return Malformed("column '" + field.name + "': " + std::string(what));
  };
  uint8_t type = 0;
  uint8_t has_validity = 0;
  const uint8_t* reserved = nullptr;
  if (!reader.Read(&type) || !reader.Read(&has_validity) || !reader.Take(6, &reserved)) {
    return bad("truncated column header");
  }
  for (int i = 0; i < 6; ++i) {
    if (reserved[i] != 0) return bad("reserved header bytes are not zero");
  }
  if (type != static_cast<uint8_t>(field.type)) return bad("type tag does not match the schema");
  if (has_validity > 1) return bad("bad validity flag");

  DecodedColumn column;
  if (field.type == Type::kNull) {
    if (has_validity != 0) return bad("null column carries a validity bitmap");
    column.null_count = static_cast<int64_t>(rows);
    return column;
  }

  const uint8_t* validity = nullptr;
  if (has_validity != 0) {
    if (!reader.Take(BitmapBytes(rows), &validity) || !reader.Pad8()) {
      return bad("truncated validity bitmap");
    }
    column.null_count = static_cast<int64_t>(rows - CountSetBits(validity, rows));
    if (column.null_count == 0) validity = nullptr;  // canonical: no bitmap without nulls
    if (column.null_count > 0 && !field.nullable) return bad("nulls in a non-nullable column");
  }
  column.buffers.push_back(validity);

  if (field.type == Type::kBool) {
    const uint8_t* bits = nullptr;
    if (!reader.Take(BitmapBytes(rows), &bits) || !reader.Pad8()) return bad("truncated values");
    column.buffers.push_back(bits);
  } else if (arrow::IsVarSize(field.type)) {
    const uint8_t* offsets = nullptr;
    if (!reader.Take((rows + 1) * sizeof(int32_t), &offsets) || !reader.Pad8()) {
      return bad("truncated offsets");
    }
    int32_t previous = arrow::detail::LoadValue<int32_t>(offsets, 0);
    if (previous != 0) return bad("first offset is not zero");
    for (uint64_t r = 1; r <= rows; ++r) {
      const int32_t current = arrow::detail::LoadValue<int32_t>(offsets, static_cast<int64_t>(r));
      if (current < previous) return bad("offsets are not monotonic");
      previous = current;
    }
    uint64_t data_len = 0;
    if (!reader.Read(&data_len)) return bad("truncated data length");
    if (data_len != static_cast<uint64_t>(previous)) {
      return bad("data length does not match the last offset");
    }
    const uint8_t* data = nullptr;
    if (!reader.Take(data_len, &data) || !reader.Pad8()) return bad("truncated value data");
    column.buffers.push_back(offsets);
    column.buffers.push_back(data);
  } else {
    const uint8_t* values = nullptr;
    if (!reader.Take(rows * arrow::FixedWidth(field.type), &values) || !reader.Pad8()) {
      return bad("truncated values");
    }
    column.buffers.push_back(values);
  }
  return column;
}

}  // namespace

std::string EncodeSchema(const std::vector<arrow::Field>& fields) {
  std::string out(kSchemaMagic);
  PutLE<uint32_t>(&out, static_cast<uint32_t>(fields.size()));
  for (const arrow::Field& field : fields) {
    out.push_back(static_cast<char>(field.type));
    out.push_back(static_cast<char>(field.nullable ? kNullableFlag : 0));
    PutLE<uint32_t>(&out, static_cast<uint32_t>(field.name.size()));
    out.append(field.name);
    const std::string_view tz =
        field.type == Type::kTimestampMicros ? std::string_view(field.timezone) : "";
    PutLE<uint32_t>(&out, static_cast<uint32_t>(tz.size()));
    out.append(tz);
  }
  return out;
}

Result<std::vector<arrow::Field>> DecodeSchema(std::string_view bytes) {
  auto bad = [](std::string_view what) {
    return Status::InvalidArgument("malformed schema payload: " + std::string(what));
  };
  Reader reader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const uint8_t* magic = nullptr;
  uint32_t count = 0;
  if (!reader.Take(kSchemaMagic.size(), &magic) ||
      std::memcmp(magic, kSchemaMagic.data(), kSchemaMagic.size()) != 0) {
    return bad("bad magic");
  }
  if (!reader.Read(&count)) return bad("truncated field count");
  if (count > kMaxBatchColumns) return bad("too many fields");
  std::vector<arrow::Field> fields;
  fields.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t type = 0;
    uint8_t flags = 0;
    uint32_t name_len = 0;
    uint32_t tz_len = 0;
    const uint8_t* name = nullptr;
    const uint8_t* tz = nullptr;
    if (!reader.Read(&type) || !reader.Read(&flags) || !reader.Read(&name_len)) {
      return bad("truncated field header");
    }
    if (type > arrow::kMaxTypeValue) return bad("unknown type tag");
    if ((flags & ~kNullableFlag) != 0) return bad("unknown field flags");
    if (name_len > kMaxFieldNameBytes) return bad("field name too long");
    if (!reader.Take(name_len, &name) || !reader.Read(&tz_len)) return bad("truncated field name");
    if (tz_len > kMaxTimezoneBytes) return bad("timezone too long");
    if (tz_len != 0 && static_cast<Type>(type) != Type::kTimestampMicros) {
      return bad("timezone on a non-timestamp field");
    }
    if (!reader.Take(tz_len, &tz)) return bad("truncated timezone");
    arrow::Field field;
    field.name.assign(reinterpret_cast<const char*>(name), name_len);
    field.type = static_cast<Type>(type);
    field.timezone.assign(reinterpret_cast<const char*>(tz), tz_len);
    field.nullable = (flags & kNullableFlag) != 0;
    // Names and zones become C strings in an ArrowSchema: no embedded NULs.
    if (field.name.find('\0') != std::string::npos ||
        field.timezone.find('\0') != std::string::npos) {
      return bad("NUL byte in a name or timezone");
    }
    fields.push_back(std::move(field));
  }
  if (!reader.AtEnd()) return bad("trailing bytes");
  return fields;
}

void EncodeBatch(const arrow::BatchView& batch, std::string* out) {
  const size_t start = out->size();
  out->append(kBatchMagic);
  PutLE<uint32_t>(out, static_cast<uint32_t>(batch.num_columns()));
  PutLE<uint64_t>(out, static_cast<uint64_t>(batch.num_rows()));
  for (size_t col = 0; col < batch.num_columns(); ++col) EncodeColumn(batch, col, start, out);
}

Result<arrow::OwnedArray> DecodeBatch(const std::vector<arrow::Field>& fields,
                                      std::string payload) {
  // The payload moves to its final home first: buffers will point into it.
  auto owner = std::make_shared<const std::string>(std::move(payload));
  const auto* base = reinterpret_cast<const uint8_t*>(owner->data());
  if (reinterpret_cast<uintptr_t>(base) % 8 != 0) {
    return Status::Internal("batch payload storage is not 8-byte aligned");
  }
  Reader reader(base, owner->size());
  const uint8_t* magic = nullptr;
  uint32_t n_columns = 0;
  uint64_t rows = 0;
  if (!reader.Take(kBatchMagic.size(), &magic) ||
      std::memcmp(magic, kBatchMagic.data(), kBatchMagic.size()) != 0) {
    return Malformed("bad magic");
  }
  if (!reader.Read(&n_columns) || !reader.Read(&rows)) return Malformed("truncated header");
  if (n_columns != fields.size()) return Malformed("column count does not match the schema");
  if (rows > kMaxBatchRows) return Malformed("row count out of range");

  std::vector<DecodedColumn> columns;
  columns.reserve(fields.size());
  for (const arrow::Field& field : fields) {
    AIRLOCK_ASSIGN_OR_RETURN(DecodedColumn column, DecodeColumn(field, rows, reader));
    columns.push_back(std::move(column));
  }
  if (!reader.AtEnd()) return Malformed("trailing bytes");

  std::vector<arrow::OwnedArray> children;
  children.reserve(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    children.push_back(arrow::MakeColumnArray(fields[i].type, static_cast<int64_t>(rows),
                                              columns[i].null_count, std::move(columns[i].buffers),
                                              owner));
  }
  return arrow::MakeStructArray(static_cast<int64_t>(rows), std::move(children));
}

}  // namespace airlock
