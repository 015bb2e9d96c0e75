// Record batches in the Arrow C Data Interface, header-only.
//
// Connectors produce batches with RecordBatchBuilder (a struct array with one
// child per column) and hand them across the ABI as ArrowSchema/ArrowArray;
// consumers read them through BatchView. Only the logical types in `Type` are
// supported; arbitrary-precision numerics travel as utf8.
//
// Ownership follows the Arrow specification: whoever holds a struct with a
// non-NULL `release` owns it and must call `release` exactly once. OwnedSchema
// and OwnedArray are move-only RAII holders that do exactly that. A move is a
// bitwise copy followed by nulling the source's `release`.
//
// Thread-safety: RecordBatchBuilder is not thread-safe. BatchView is
// immutable and may be read from several threads while its array lives.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "airlock/c/arrow_c_data.h"
#include "airlock/cpp/status.hpp"

namespace airlock::arrow {

// ---------------------------------------------------------------------------
// Types and fields
// ---------------------------------------------------------------------------

// Logical column types. The numeric values are stable: the batch codec puts
// them on the wire.
enum class Type : uint8_t {
  kNull = 0,             // "n"
  kBool = 1,             // "b"
  kInt32 = 2,            // "i"
  kInt64 = 3,            // "l"
  kFloat64 = 4,          // "g"
  kUtf8 = 5,             // "u"  (int32 offsets)
  kBinary = 6,           // "z"  (int32 offsets)
  kDate32 = 7,           // "tdD" days since 1970-01-01
  kTimestampMicros = 8,  // "tsu:<tz>" microseconds since the epoch; empty tz = naive
  kTime64Micros = 9,     // "ttu" microseconds since midnight
};
inline constexpr uint8_t kMaxTypeValue = static_cast<uint8_t>(Type::kTime64Micros);

inline const char* TypeName(Type type) {
  switch (type) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "bool";
    case Type::kInt32:
      return "int32";
    case Type::kInt64:
      return "int64";
    case Type::kFloat64:
      return "float64";
    case Type::kUtf8:
      return "utf8";
    case Type::kBinary:
      return "binary";
    case Type::kDate32:
      return "date32";
    case Type::kTimestampMicros:
      return "timestamp[us]";
    case Type::kTime64Micros:
      return "time64[us]";
  }
  return "unknown";
}

// Width in bytes of one value of a fixed-width type; 0 for null, bool (bit-packed)
// and the variable-size types.
inline constexpr size_t FixedWidth(Type type) {
  switch (type) {
    case Type::kInt32:
    case Type::kDate32:
      return 4;
    case Type::kInt64:
    case Type::kFloat64:
    case Type::kTimestampMicros:
    case Type::kTime64Micros:
      return 8;
    default:
      return 0;
  }
}
inline constexpr bool IsVarSize(Type type) {
  return type == Type::kUtf8 || type == Type::kBinary;
}

// Number of buffers the C Data Interface prescribes for an array of `type`.
inline constexpr int64_t BufferCount(Type type) {
  if (type == Type::kNull) return 0;
  return IsVarSize(type) ? 3 : 2;
}

struct Field {
  std::string name;
  Type type = Type::kNull;
  std::string timezone;  // kTimestampMicros only; empty = naive timestamp
  bool nullable = true;

  friend bool operator==(const Field&, const Field&) = default;
};

// The C Data Interface format string of `field` ("tsu:UTC", "l", ...).
inline std::string FormatString(const Field& field) {
  switch (field.type) {
    case Type::kNull:
      return "n";
    case Type::kBool:
      return "b";
    case Type::kInt32:
      return "i";
    case Type::kInt64:
      return "l";
    case Type::kFloat64:
      return "g";
    case Type::kUtf8:
      return "u";
    case Type::kBinary:
      return "z";
    case Type::kDate32:
      return "tdD";
    case Type::kTimestampMicros:
      return "tsu:" + field.timezone;
    case Type::kTime64Micros:
      return "ttu";
  }
  return "n";
}

namespace detail {

// The type of every supported format string that carries no parameter.
inline std::optional<Type> TypeOfPlainFormat(std::string_view format) {
  constexpr std::pair<std::string_view, Type> kFormats[] = {
      {"n", Type::kNull},   {"b", Type::kBool},     {"i", Type::kInt32},
      {"l", Type::kInt64},  {"g", Type::kFloat64},  {"u", Type::kUtf8},
      {"z", Type::kBinary}, {"tdD", Type::kDate32}, {"ttu", Type::kTime64Micros},
  };
  for (const auto& [text, type] : kFormats) {
    if (format == text) return type;
  }
  return std::nullopt;
}

}  // namespace detail

// Reads one (child) schema into a Field. Fails with TypeNotRepresentable for
// formats outside `Type` (naming the format), dictionary encoding or nested
// children; InvalidArgument for a released schema or a NULL format.
inline Result<Field> ParseField(const ArrowSchema& schema) {
  if (schema.release == nullptr) return Status::InvalidArgument("schema is released");
  if (schema.format == nullptr) return Status::InvalidArgument("schema has no format string");
  const std::string_view format(schema.format);
  Field field;
  field.name = schema.name != nullptr ? schema.name : "";
  field.nullable = (schema.flags & ARROW_FLAG_NULLABLE) != 0;
  if (schema.dictionary != nullptr) {
    return Status::TypeNotRepresentable("dictionary-encoded column '" + field.name +
                                        "' is not supported");
  }
  if (format.starts_with("tsu:")) {
    field.type = Type::kTimestampMicros;
    field.timezone = std::string(format.substr(4));
  } else if (auto type = detail::TypeOfPlainFormat(format)) {
    field.type = *type;
  } else {
    return Status::TypeNotRepresentable("unsupported Arrow format '" + std::string(format) +
                                        "' for column '" + field.name + "'");
  }
  if (schema.n_children != 0) {
    return Status::TypeNotRepresentable("column '" + field.name + "' of format '" +
                                        std::string(format) + "' has children");
  }
  return field;
}

// ---------------------------------------------------------------------------
// RAII owners
// ---------------------------------------------------------------------------

namespace detail {

// Holds one ArrowSchema or ArrowArray by value and releases it on destruction.
template <typename T, typename Derived>
class OwnedStruct {
 public:
  OwnedStruct() noexcept = default;
  OwnedStruct(OwnedStruct&& other) noexcept : s_(other.s_) { other.s_ = T{}; }
  OwnedStruct& operator=(OwnedStruct&& other) noexcept {
    if (this != &other) {
      reset();
      s_ = other.s_;
      other.s_ = T{};
    }
    return *this;
  }
  OwnedStruct(const OwnedStruct&) = delete;
  OwnedStruct& operator=(const OwnedStruct&) = delete;
  ~OwnedStruct() { reset(); }

  T* get() noexcept { return &s_; }
  const T* get() const noexcept { return &s_; }
  T* operator->() noexcept { return &s_; }
  const T* operator->() const noexcept { return &s_; }
  // True while this holds a live (unreleased) struct.
  bool valid() const noexcept { return s_.release != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  // Releases the held struct now (if any); this becomes empty.
  void reset() noexcept {
    if (s_.release != nullptr) s_.release(&s_);
    s_ = T{};
  }

  // Moves the held struct into caller-provided storage `out` (which must not
  // hold a live struct): bitwise copy, then this becomes empty. Returns `out`.
  T* release_to(T* out) noexcept {
    assert(out != nullptr);
    *out = s_;
    s_ = T{};
    return out;
  }
  void MoveTo(T* dst) noexcept { release_to(dst); }

  // Takes ownership of `*src` (bitwise copy); src->release is set to NULL so the
  // raw struct no longer owns anything.
  static Derived TakeFrom(T* src) noexcept {
    Derived owned;
    if (src != nullptr) {
      static_cast<OwnedStruct&>(owned).s_ = *src;
      src->release = nullptr;
    }
    return owned;
  }

 private:
  T s_{};
};

}  // namespace detail

class OwnedSchema final : public detail::OwnedStruct<ArrowSchema, OwnedSchema> {};
class OwnedArray final : public detail::OwnedStruct<ArrowArray, OwnedArray> {};

// ---------------------------------------------------------------------------
// Producer-side memory
// ---------------------------------------------------------------------------

namespace detail {

inline constexpr size_t kBufferAlignment = 64;

struct AlignedFree {
  void operator()(uint8_t* p) const noexcept {
    ::operator delete (p, std::align_val_t{kBufferAlignment});
  }
};

// A growable byte buffer whose storage is 64-byte aligned. Growth is geometric;
// appends never allocate otherwise. New bytes from Resize are uninitialised.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::move(other.data_)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }

  uint8_t* data() noexcept { return data_.get(); }
  const uint8_t* data() const noexcept { return data_.get(); }
  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return capacity_; }

  void Reserve(size_t n) {
    if (n > capacity_) Grow(n);
  }
  void Resize(size_t n) {
    Reserve(n);
    size_ = n;
  }
  template <typename T>
  void Push(T value) {
    if (capacity_ - size_ < sizeof(T)) Grow(size_ + sizeof(T));
    std::memcpy(data_.get() + size_, &value, sizeof(T));
    size_ += sizeof(T);
  }
  void Append(const void* bytes, size_t n) {
    if (n == 0) return;
    if (capacity_ - size_ < n) Grow(size_ + n);
    std::memcpy(data_.get() + size_, bytes, n);
    size_ += n;
  }

 private:
  void Grow(size_t min_capacity) {
    size_t capacity = std::max({min_capacity, capacity_ * 2, kBufferAlignment});
    capacity = (capacity + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    std::unique_ptr<uint8_t[], AlignedFree> grown(
        static_cast<uint8_t*>(::operator new (capacity, std::align_val_t{kBufferAlignment})));
    if (size_ != 0) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = capacity;
  }

  std::unique_ptr<uint8_t[], AlignedFree> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// private_data of every ArrowSchema this header produces. Each child has its
// own, so a consumer may move a child out and release the parent.
struct SchemaPrivate {
  std::string format;
  std::string name;
  std::string metadata;  // encoded; `metadata` points here when non-empty
  std::vector<ArrowSchema> children;
  std::vector<ArrowSchema*> child_ptrs;
};

inline void ReleaseSchema(ArrowSchema* schema) noexcept {
  if (schema == nullptr || schema->release == nullptr) return;
  for (int64_t i = 0; i < schema->n_children; ++i) {
    ArrowSchema* child = schema->children[i];
    if (child != nullptr && child->release != nullptr) child->release(child);
  }
  std::unique_ptr<SchemaPrivate> owned(static_cast<SchemaPrivate*>(schema->private_data));
  schema->private_data = nullptr;
  schema->release = nullptr;
}

inline OwnedSchema MakeSchemaNode(std::string format, std::string name, int64_t flags,
                                  size_t n_children) {
  auto priv = std::make_unique<SchemaPrivate>();
  priv->format = std::move(format);
  priv->name = std::move(name);
  priv->children.resize(n_children);  // zeroed: release == NULL until filled
  priv->child_ptrs.resize(n_children);
  for (size_t i = 0; i < n_children; ++i) priv->child_ptrs[i] = &priv->children[i];
  ArrowSchema raw{};
  raw.format = priv->format.c_str();
  raw.name = priv->name.c_str();
  raw.flags = flags;
  raw.n_children = static_cast<int64_t>(n_children);
  raw.children = n_children != 0 ? priv->child_ptrs.data() : nullptr;
  raw.release = &ReleaseSchema;
  raw.private_data = priv.release();
  return OwnedSchema::TakeFrom(&raw);
}

// private_data of every ArrowArray this header produces. The buffer memory is
// owned either directly (`owned`) or through a shared owner (e.g. a payload).
struct ArrayPrivate {
  std::vector<const void*> buffers;
  std::vector<ArrowArray> children;
  std::vector<ArrowArray*> child_ptrs;
  std::vector<AlignedBuffer> owned;
  std::shared_ptr<const void> shared_owner;
};

inline void ReleaseArray(ArrowArray* array) noexcept {
  if (array == nullptr || array->release == nullptr) return;
  for (int64_t i = 0; i < array->n_children; ++i) {
    ArrowArray* child = array->children[i];
    if (child != nullptr && child->release != nullptr) child->release(child);
  }
  std::unique_ptr<ArrayPrivate> owned(static_cast<ArrayPrivate*>(array->private_data));
  array->private_data = nullptr;
  array->release = nullptr;
}

inline OwnedArray MakeArrayNode(int64_t length, int64_t null_count,
                                std::vector<const void*> buffers, size_t n_children,
                                std::vector<AlignedBuffer> owned,
                                std::shared_ptr<const void> shared_owner) {
  auto priv = std::make_unique<ArrayPrivate>();
  priv->buffers = std::move(buffers);
  priv->children.resize(n_children);  // zeroed: release == NULL until filled
  priv->child_ptrs.resize(n_children);
  for (size_t i = 0; i < n_children; ++i) priv->child_ptrs[i] = &priv->children[i];
  priv->owned = std::move(owned);
  priv->shared_owner = std::move(shared_owner);
  ArrowArray raw{};
  raw.length = length;
  raw.null_count = null_count;
  raw.offset = 0;
  raw.n_buffers = static_cast<int64_t>(priv->buffers.size());
  raw.n_children = static_cast<int64_t>(n_children);
  raw.buffers = priv->buffers.empty() ? nullptr : priv->buffers.data();
  raw.children = n_children != 0 ? priv->child_ptrs.data() : nullptr;
  raw.release = &ReleaseArray;
  raw.private_data = priv.release();
  return OwnedArray::TakeFrom(&raw);
}

inline bool GetBit(const uint8_t* bits, int64_t i) {
  return ((bits[i >> 3] >> (i & 7)) & 1) != 0;
}

template <typename T>
inline T LoadValue(const uint8_t* values, int64_t i) {
  T v;
  std::memcpy(&v, values + static_cast<size_t>(i) * sizeof(T), sizeof(T));
  return v;
}

}  // namespace detail

// A "+s" schema with one child per field (child flags carry `nullable`).
inline OwnedSchema MakeStructSchema(const std::vector<Field>& fields) {
  OwnedSchema parent = detail::MakeSchemaNode("+s", "", 0, fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    OwnedSchema child = detail::MakeSchemaNode(FormatString(fields[i]), fields[i].name,
                                               fields[i].nullable ? ARROW_FLAG_NULLABLE : 0, 0);
    child.MoveTo(parent->children[i]);
  }
  return parent;
}

// ---------------------------------------------------------------------------
// Schema metadata
// ---------------------------------------------------------------------------

// Key/value pairs of a schema's `metadata`, in order (keys may repeat).
using Metadata = std::vector<std::pair<std::string, std::string>>;

// Bounds ParseMetadata holds a producer to.
inline constexpr int32_t kMaxMetadataPairs = 1024;
inline constexpr int32_t kMaxMetadataBytes = int32_t{1} << 20;  // per key or value

// The C Data Interface encoding of `metadata`: int32 pair count, then per
// pair int32 key length, key bytes, int32 value length, value bytes (native
// byte order). No pairs encode as the empty string (a NULL `metadata`).
// Keys and values must be shorter than 2^31 bytes (asserted).
inline std::string EncodeMetadata(const Metadata& metadata) {
  if (metadata.empty()) return {};
  std::string out;
  auto put_int = [&out](size_t n) {
    assert(n <= static_cast<size_t>(std::numeric_limits<int32_t>::max()));
    const int32_t v = static_cast<int32_t>(n);
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  };
  put_int(metadata.size());
  for (const auto& [key, value] : metadata) {
    put_int(key.size());
    out += key;
    put_int(value.size());
    out += value;
  }
  return out;
}

// Decodes a schema's `metadata` field; NULL decodes as no pairs. The encoding
// carries no overall length, so the bytes are trusted to be as long as they
// claim (the C Data Interface is in-process). InvalidArgument for a negative
// count or length, or one beyond kMaxMetadataPairs / kMaxMetadataBytes.
inline Result<Metadata> ParseMetadata(const char* metadata) {
  Metadata pairs;
  if (metadata == nullptr) return pairs;
  const char* p = metadata;
  auto get_int = [&p](int32_t limit, const char* what) -> Result<int32_t> {
    int32_t v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    if (v < 0 || v > limit) {
      return Status::InvalidArgument(std::string("schema metadata has a bad ") + what + " (" +
                                     std::to_string(v) + ")");
    }
    return v;
  };
  AIRLOCK_ASSIGN_OR_RETURN(const int32_t count, get_int(kMaxMetadataPairs, "pair count"));
  pairs.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    AIRLOCK_ASSIGN_OR_RETURN(const int32_t key_len, get_int(kMaxMetadataBytes, "key length"));
    std::string key(p, static_cast<size_t>(key_len));
    p += key_len;
    AIRLOCK_ASSIGN_OR_RETURN(const int32_t value_len, get_int(kMaxMetadataBytes, "value length"));
    std::string value(p, static_cast<size_t>(value_len));
    p += value_len;
    pairs.emplace_back(std::move(key), std::move(value));
  }
  return pairs;
}

// The value of the first pair named `key` in `schema`'s metadata, or nullopt
// when there is none. Fails as ParseMetadata does.
inline Result<std::optional<std::string>> FindMetadata(const ArrowSchema& schema,
                                                       std::string_view key) {
  AIRLOCK_ASSIGN_OR_RETURN(Metadata pairs, ParseMetadata(schema.metadata));
  for (auto& [k, v] : pairs) {
    if (k == key) return std::optional<std::string>(std::move(v));
  }
  return std::optional<std::string>();
}

// Replaces the metadata of a schema this header produced (MakeStructSchema,
// RecordBatchBuilder::MakeSchema); no pairs leave `metadata` NULL.
// InvalidArgument for a released schema or one from another producer (whose
// storage this cannot own), too many pairs, or a key or value longer than
// kMaxMetadataBytes.
inline Status SetSchemaMetadata(OwnedSchema& schema, const Metadata& metadata) {
  if (!schema.valid()) return Status::InvalidArgument("schema is released");
  if (schema->release != &detail::ReleaseSchema || schema->private_data == nullptr) {
    return Status::InvalidArgument("schema was not made by this library");
  }
  if (metadata.size() > static_cast<size_t>(kMaxMetadataPairs)) {
    return Status::InvalidArgument("too many schema metadata pairs");
  }
  for (const auto& [key, value] : metadata) {
    if (key.size() > static_cast<size_t>(kMaxMetadataBytes) ||
        value.size() > static_cast<size_t>(kMaxMetadataBytes)) {
      return Status::InvalidArgument("schema metadata key or value is too long");
    }
  }
  auto* priv = static_cast<detail::SchemaPrivate*>(schema->private_data);
  priv->metadata = EncodeMetadata(metadata);
  schema->metadata = priv->metadata.empty() ? nullptr : priv->metadata.data();
  return Status::Ok();
}

// An array of `type` over buffers whose memory `owner` keeps alive (the array's
// release drops its reference). `buffers` must have BufferCount(type) entries.
inline OwnedArray MakeColumnArray([[maybe_unused]] Type type, int64_t length, int64_t null_count,
                                  std::vector<const void*> buffers,
                                  std::shared_ptr<const void> owner) {
  assert(static_cast<int64_t>(buffers.size()) == BufferCount(type));
  return detail::MakeArrayNode(length, null_count, std::move(buffers), 0, {}, std::move(owner));
}

// A struct array ("+s", no validity bitmap) of `length` rows that takes
// ownership of `children` (each moved in; each must have length >= `length`).
inline OwnedArray MakeStructArray(int64_t length, std::vector<OwnedArray> children) {
  OwnedArray parent = detail::MakeArrayNode(length, 0, {nullptr}, children.size(), {}, nullptr);
  for (size_t i = 0; i < children.size(); ++i) children[i].MoveTo(parent->children[i]);
  return parent;
}

// ---------------------------------------------------------------------------
// RecordBatchBuilder
// ---------------------------------------------------------------------------

// Builds a struct array column by column. Append one value to every column per
// row (any order). Appending through the wrong typed appender, or to a column
// index that does not exist, is a programming error: it asserts in debug
// builds and, in release builds, appends a null instead (or does nothing for a
// bad index). Columns left shorter than the longest are padded with nulls by
// Finish() (also asserted).
class RecordBatchBuilder {
 public:
  explicit RecordBatchBuilder(std::vector<Field> fields, size_t reserve_rows = 0)
      : fields_(std::move(fields)), reserve_rows_(reserve_rows) {
    columns_.resize(fields_.size());
    for (size_t i = 0; i < fields_.size(); ++i) {
      columns_[i].type = fields_[i].type;
      ResetColumn(columns_[i], reserve_rows_, 0);
    }
  }

  const std::vector<Field>& fields() const { return fields_; }
  size_t num_columns() const { return columns_.size(); }

  void AppendNull(size_t col) {
    if (col >= columns_.size()) {
      assert(false && "column index out of range");
      return;
    }
    AppendNullTo(columns_[col]);
  }
  void AppendBool(size_t col, bool value) {
    Column* c = Check(col, Type::kBool);
    if (c == nullptr) return;
    MarkValid(*c);
    AppendBit(c->values, c->length, value);
    ++c->length;
  }
  void AppendInt32(size_t col, int32_t value) { AppendFixed(col, Type::kInt32, value); }
  void AppendInt64(size_t col, int64_t value) { AppendFixed(col, Type::kInt64, value); }
  void AppendDouble(size_t col, double value) { AppendFixed(col, Type::kFloat64, value); }
  void AppendDate32(size_t col, int32_t days) { AppendFixed(col, Type::kDate32, days); }
  void AppendTimestamp(size_t col, int64_t micros) {
    AppendFixed(col, Type::kTimestampMicros, micros);
  }
  void AppendTime(size_t col, int64_t micros) { AppendFixed(col, Type::kTime64Micros, micros); }

  // utf8 or binary (bytes are not checked for UTF-8 validity). Returns false,
  // and appends a null, if the column's data would exceed the 2 GiB limit of
  // int32 offsets; flush by bytes() well before that.
  bool AppendString(size_t col, std::string_view value) {
    if (col >= columns_.size()) {
      assert(false && "column index out of range");
      return false;
    }
    Column& c = columns_[col];
    if (!IsVarSize(c.type)) {
      assert(false && "AppendString on a column that is not utf8/binary");
      AppendNullTo(c);
      return false;
    }
    constexpr size_t kMaxData = static_cast<size_t>(std::numeric_limits<int32_t>::max());
    if (value.size() > kMaxData - c.data.size()) {
      AppendNullTo(c);
      return false;
    }
    MarkValid(c);
    c.data.Append(value.data(), value.size());
    c.offsets.Push(static_cast<int32_t>(c.data.size()));
    ++c.length;
    return true;
  }

  // Rows appended so far (the longest column).
  size_t rows() const {
    int64_t rows = 0;
    for (const Column& c : columns_) rows = std::max(rows, c.length);
    return static_cast<size_t>(rows);
  }

  // Approximate payload bytes held (all buffers).
  size_t bytes() const {
    size_t total = 0;
    for (const Column& c : columns_) {
      total += c.validity.size() + c.values.size() + c.offsets.size() + c.data.size();
    }
    return total;
  }

  OwnedSchema MakeSchema() const { return MakeStructSchema(fields_); }

  // Hands out everything appended as a struct array (offset 0, no struct
  // validity, length = rows()) and resets to empty, ready for the next batch.
  OwnedArray Finish() {
    const int64_t length = static_cast<int64_t>(rows());
    OwnedArray parent = detail::MakeArrayNode(length, 0, {nullptr}, columns_.size(), {}, nullptr);
    for (size_t i = 0; i < columns_.size(); ++i) {
      Column& c = columns_[i];
      assert(c.length == length && "column left shorter than the batch");
      while (c.length < length) AppendNullTo(c);
      FinishColumn(c).MoveTo(parent->children[i]);
    }
    return parent;
  }

 private:
  struct Column {
    Type type = Type::kNull;
    int64_t length = 0;
    int64_t null_count = 0;
    bool has_validity = false;       // bitmap exists only once a null was appended
    detail::AlignedBuffer validity;  // 1 bit per row, LSB first
    detail::AlignedBuffer values;    // fixed-width values, or bool bits
    detail::AlignedBuffer offsets;   // int32, length + 1 entries (utf8/binary)
    detail::AlignedBuffer data;      // value bytes (utf8/binary)
  };

  // Appends bit `index` to a bitmap holding exactly `index` bits.
  static void AppendBit(detail::AlignedBuffer& bits, int64_t index, bool bit) {
    if ((index & 7) == 0) bits.Push<uint8_t>(0);
    if (bit) bits.data()[index >> 3] |= static_cast<uint8_t>(1u << (index & 7));
  }

  static void MarkValid(Column& c) {
    if (c.has_validity) AppendBit(c.validity, c.length, true);
  }

  static void StartValidity(Column& c) {
    // Every row so far was valid: all-ones, with the unused high bits cleared.
    const size_t full = static_cast<size_t>(c.length >> 3);
    const int tail = static_cast<int>(c.length & 7);
    c.validity.Resize(full + (tail != 0 ? 1 : 0));
    if (full != 0) std::memset(c.validity.data(), 0xFF, full);
    if (tail != 0) c.validity.data()[full] = static_cast<uint8_t>((1u << tail) - 1);
    c.has_validity = true;
  }

  static void AppendNullTo(Column& c) {
    if (c.type != Type::kNull) {
      if (!c.has_validity) StartValidity(c);
      AppendBit(c.validity, c.length, false);
      const size_t width = FixedWidth(c.type);
      if (width == 8) {
        c.values.Push<int64_t>(0);
      } else if (width == 4) {
        c.values.Push<int32_t>(0);
      } else if (c.type == Type::kBool) {
        AppendBit(c.values, c.length, false);
      } else {
        c.offsets.Push(static_cast<int32_t>(c.data.size()));
      }
    }
    ++c.null_count;
    ++c.length;
  }

  Column* Check(size_t col, Type type) {
    if (col >= columns_.size()) {
      assert(false && "column index out of range");
      return nullptr;
    }
    Column& c = columns_[col];
    if (c.type != type) {
      assert(false && "appended value does not match the column type");
      AppendNullTo(c);
      return nullptr;
    }
    return &c;
  }

  template <typename T>
  void AppendFixed(size_t col, Type type, T value) {
    Column* c = Check(col, type);
    if (c == nullptr) return;
    MarkValid(*c);
    c->values.Push(value);
    ++c->length;
  }

  static void ResetColumn(Column& c, size_t rows, size_t data_bytes) {
    c.length = 0;
    c.null_count = 0;
    c.has_validity = false;
    c.validity = {};
    c.values = {};
    c.offsets = {};
    c.data = {};
    if (c.type == Type::kNull) return;
    if (c.type == Type::kBool) {
      c.values.Reserve((rows + 7) / 8);
    } else if (IsVarSize(c.type)) {
      c.offsets.Reserve((rows + 1) * sizeof(int32_t));
      c.offsets.Push<int32_t>(0);
      c.data.Reserve(data_bytes);
    } else {
      c.values.Reserve(rows * FixedWidth(c.type));
    }
  }

  // Moves the column's buffers into a child array and resets the column,
  // reserving for a batch like the one just finished.
  OwnedArray FinishColumn(Column& c) {
    const int64_t length = c.length;
    const int64_t null_count = c.null_count;
    const size_t data_bytes = c.data.size();
    std::vector<const void*> buffers;
    std::vector<detail::AlignedBuffer> owned;
    if (c.type != Type::kNull) {
      // Non-validity buffers are never NULL, even for an empty batch.
      if (c.values.data() == nullptr && !IsVarSize(c.type)) c.values.Reserve(1);
      if (c.data.data() == nullptr && IsVarSize(c.type)) c.data.Reserve(1);
      buffers.push_back(c.has_validity ? c.validity.data() : nullptr);
      if (IsVarSize(c.type)) {
        buffers.push_back(c.offsets.data());
        buffers.push_back(c.data.data());
        owned.push_back(std::move(c.offsets));
        owned.push_back(std::move(c.data));
      } else {
        buffers.push_back(c.values.data());
        owned.push_back(std::move(c.values));
      }
      if (c.has_validity) owned.push_back(std::move(c.validity));
    }
    OwnedArray array =
        detail::MakeArrayNode(length, null_count, std::move(buffers), 0, std::move(owned), nullptr);
    ResetColumn(c, std::max(reserve_rows_, static_cast<size_t>(length)), data_bytes);
    return array;
  }

  std::vector<Field> fields_;
  size_t reserve_rows_;
  std::vector<Column> columns_;
};

// ---------------------------------------------------------------------------
// BatchView
// ---------------------------------------------------------------------------

// Read access to a struct array of supported columns, whichever producer made
// it (sliced arrays included: struct and child offsets are honoured). The view
// borrows: the array must outlive it and must not be released meanwhile.
// Make() checks the structure in O(columns); buffer contents (e.g. that
// offsets are monotonic) are trusted, as the C Data Interface is in-process.
class BatchView {
 public:
  // Raw access to one column, for code that copies buffers wholesale.
  struct Column {
    Type type = Type::kNull;
    int64_t offset = 0;                 // index in the buffers of logical row 0
    const uint8_t* validity = nullptr;  // NULL when the column reports no nulls
    const uint8_t* values = nullptr;    // fixed-width values or bool bits
    const int32_t* offsets = nullptr;   // utf8/binary: physical offsets (not rebased)
    const uint8_t* data = nullptr;      // utf8/binary value bytes
  };

  static Result<BatchView> Make(const ArrowSchema& struct_schema, const ArrowArray& struct_array) {
    if (struct_schema.release == nullptr) return Status::InvalidArgument("schema is released");
    if (struct_schema.format == nullptr || std::string_view(struct_schema.format) != "+s") {
      return Status::InvalidArgument("record batch schema must be a struct ('+s')");
    }
    if (struct_schema.n_children < 0 ||
        (struct_schema.n_children > 0 && struct_schema.children == nullptr)) {
      return Status::InvalidArgument("struct schema has malformed children");
    }
    std::vector<Field> fields;
    fields.reserve(static_cast<size_t>(struct_schema.n_children));
    for (int64_t i = 0; i < struct_schema.n_children; ++i) {
      const ArrowSchema* child = struct_schema.children[i];
      if (child == nullptr) return Status::InvalidArgument("struct schema has a NULL child");
      AIRLOCK_ASSIGN_OR_RETURN(Field field, ParseField(*child));
      fields.push_back(std::move(field));
    }
    return Make(std::move(fields), struct_array);
  }

  // Same, with the schema given as fields (e.g. decoded from the wire).
  static Result<BatchView> Make(std::vector<Field> fields, const ArrowArray& array) {
    if (array.release == nullptr) return Status::InvalidArgument("array is released");
    if (array.length < 0 || array.offset < 0 ||
        array.offset > std::numeric_limits<int64_t>::max() - array.length) {
      return Status::InvalidArgument("struct array has a bad length or offset");
    }
    if (array.n_buffers != 1 || array.buffers == nullptr) {
      return Status::InvalidArgument("struct array must have exactly one buffer");
    }
    if (array.n_children != static_cast<int64_t>(fields.size()) ||
        (array.n_children > 0 && array.children == nullptr)) {
      return Status::InvalidArgument("struct array has " + std::to_string(array.n_children) +
                                     " children but the schema has " +
                                     std::to_string(fields.size()));
    }
    if (array.dictionary != nullptr) return Status::InvalidArgument("struct array is dictionary");
    BatchView view;
    view.num_rows_ = static_cast<size_t>(array.length);
    view.row_offset_ = array.offset;
    if (array.null_count != 0 && array.length != 0) {
      view.row_validity_ = static_cast<const uint8_t*>(array.buffers[0]);
      if (view.row_validity_ == nullptr && array.null_count > 0) {
        return Status::InvalidArgument("struct array has nulls but no validity bitmap");
      }
    }
    const int64_t needed = array.offset + array.length;  // child rows the struct spans
    view.columns_.reserve(fields.size());
    for (size_t i = 0; i < fields.size(); ++i) {
      const ArrowArray* child = array.children[i];
      const Field& field = fields[i];
      auto bad = [&](const std::string& what) {
        return Status::InvalidArgument("column '" + field.name + "' (" + TypeName(field.type) +
                                       "): " + what);
      };
      if (child == nullptr || child->release == nullptr) return bad("child array missing");
      if (child->dictionary != nullptr || child->n_children != 0) {
        return bad("child array must be a flat array");
      }
      if (child->length < 0 || child->offset < 0 || child->length < needed ||
          child->offset > std::numeric_limits<int64_t>::max() - child->length) {
        return bad("child length/offset do not cover the struct's rows");
      }
      if (child->n_buffers != BufferCount(field.type)) {
        return bad("expected " + std::to_string(BufferCount(field.type)) + " buffers, got " +
                   std::to_string(child->n_buffers));
      }
      if (child->n_buffers > 0 && child->buffers == nullptr) return bad("buffers missing");
      Column column;
      column.type = field.type;
      column.offset = child->offset + array.offset;
      if (field.type != Type::kNull) {
        if (child->null_count != 0) {
          column.validity = static_cast<const uint8_t*>(child->buffers[0]);
          if (column.validity == nullptr && child->null_count > 0) {
            return bad("nulls reported but no validity bitmap");
          }
        }
        if (array.length > 0) {
          for (int64_t b = 1; b < child->n_buffers; ++b) {
            if (child->buffers[b] == nullptr && !(IsVarSize(field.type) && b == 2)) {
              return bad("buffer " + std::to_string(b) + " is NULL");
            }
          }
        }
        if (IsVarSize(field.type)) {
          column.offsets = static_cast<const int32_t*>(child->buffers[1]);
          column.data = static_cast<const uint8_t*>(child->buffers[2]);
        } else {
          column.values = static_cast<const uint8_t*>(child->buffers[1]);
        }
      }
      view.columns_.push_back(column);
    }
    view.fields_ = std::move(fields);
    return view;
  }

  size_t num_rows() const { return num_rows_; }
  size_t num_columns() const { return columns_.size(); }
  const Field& field(size_t col) const { return fields_[col]; }
  const std::vector<Field>& fields() const { return fields_; }
  const Column& column(size_t col) const { return columns_[col]; }
  // Struct-level validity (NULL when no struct row is null) and its offset.
  const uint8_t* row_validity() const { return row_validity_; }
  int64_t row_offset() const { return row_offset_; }

  // True when the row is null in the column, or the whole struct row is null.
  // Out-of-range indices assert and read as null.
  bool IsNull(size_t col, size_t row) const {
    if (col >= columns_.size() || row >= num_rows_) {
      assert(false && "column or row index out of range");
      return true;
    }
    if (row_validity_ != nullptr &&
        !detail::GetBit(row_validity_, row_offset_ + static_cast<int64_t>(row))) {
      return true;
    }
    const Column& c = columns_[col];
    if (c.type == Type::kNull) return true;
    return c.validity != nullptr &&
           !detail::GetBit(c.validity, c.offset + static_cast<int64_t>(row));
  }

  // Typed getters. The value of a null slot is unspecified. Reading a column
  // through the wrong getter, or out of range, asserts and returns 0 / empty.
  bool GetBool(size_t col, size_t row) const {
    const Column* c = Check(col, row, Type::kBool);
    return c != nullptr && detail::GetBit(c->values, c->offset + static_cast<int64_t>(row));
  }
  int32_t GetInt32(size_t col, size_t row) const { return Load<int32_t>(col, row, Type::kInt32); }
  int64_t GetInt64(size_t col, size_t row) const { return Load<int64_t>(col, row, Type::kInt64); }
  double GetDouble(size_t col, size_t row) const { return Load<double>(col, row, Type::kFloat64); }
  int32_t GetDate32(size_t col, size_t row) const { return Load<int32_t>(col, row, Type::kDate32); }
  int64_t GetTimestamp(size_t col, size_t row) const {
    return Load<int64_t>(col, row, Type::kTimestampMicros);
  }
  int64_t GetTime(size_t col, size_t row) const {
    return Load<int64_t>(col, row, Type::kTime64Micros);
  }
  // utf8 or binary; the view points into the array's data buffer.
  std::string_view GetString(size_t col, size_t row) const {
    if (col >= columns_.size() || row >= num_rows_ || !IsVarSize(columns_[col].type)) {
      assert(false && "GetString on a column that is not utf8/binary, or out of range");
      return {};
    }
    const Column& c = columns_[col];
    const int64_t i = c.offset + static_cast<int64_t>(row);
    const int32_t begin =
        detail::LoadValue<int32_t>(reinterpret_cast<const uint8_t*>(c.offsets), i);
    const int32_t end =
        detail::LoadValue<int32_t>(reinterpret_cast<const uint8_t*>(c.offsets), i + 1);
    if (end <= begin || c.data == nullptr) return {};
    return {reinterpret_cast<const char*>(c.data) + begin, static_cast<size_t>(end - begin)};
  }

 private:
  BatchView() = default;

  const Column* Check(size_t col, size_t row, Type type) const {
    if (col >= columns_.size() || row >= num_rows_ || columns_[col].type != type) {
      assert(false && "getter does not match the column type, or index out of range");
      return nullptr;
    }
    return &columns_[col];
  }

  template <typename T>
  T Load(size_t col, size_t row, Type type) const {
    const Column* c = Check(col, row, type);
    if (c == nullptr) return T{};
    return detail::LoadValue<T>(c->values, c->offset + static_cast<int64_t>(row));
  }

  std::vector<Field> fields_;
  std::vector<Column> columns_;
  size_t num_rows_ = 0;
  int64_t row_offset_ = 0;
  const uint8_t* row_validity_ = nullptr;
};

// ---------------------------------------------------------------------------
// Calendar helpers (proleptic Gregorian, UTC)
// ---------------------------------------------------------------------------

struct CivilDate {
  int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

// Days since 1970-01-01 → calendar date (era-based; exact for |days| < 2^60,
// far beyond any date32 or timestamp[us]).
inline CivilDate CivilFromDays(int64_t days) {
  const int64_t z = days + 719468;  // shift the epoch to 0000-03-01
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;                                       // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // March = 0
  const unsigned day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  const unsigned month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

// Calendar date → days since 1970-01-01 (inverse of CivilFromDays).
inline int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t yoe = year - era * 400;                       // [0, 399]
  const int64_t mp = month > 2 ? month - 3 : month + 9;       // March = 0
  const int64_t doy = (153 * mp + 2) / 5 + day - 1;           // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  // [0, 146096]
  return era * 146097 + doe - 719468;
}

namespace detail {

inline void AppendCivilDate(std::string& out, int64_t days) {
  const CivilDate date = CivilFromDays(days);
  char buf[48];
  const bool negative = date.year < 0;
  const int n = std::snprintf(buf, sizeof buf, "%s%04lld-%02u-%02u", negative ? "-" : "",
                              static_cast<long long>(negative ? -date.year : date.year), date.month,
                              date.day);
  out.append(buf, static_cast<size_t>(n));
}

// "HH:MM:SS[.ffffff]" for a non-negative count of microseconds (hours unbounded).
inline void AppendClock(std::string& out, uint64_t micros) {
  constexpr uint64_t kSecond = 1000000;
  const uint64_t frac = micros % kSecond;
  const uint64_t secs = micros / kSecond;
  char buf[64];
  int n = std::snprintf(
      buf, sizeof buf, "%02llu:%02llu:%02llu", static_cast<unsigned long long>(secs / 3600),
      static_cast<unsigned long long>(secs / 60 % 60), static_cast<unsigned long long>(secs % 60));
  if (frac != 0) {
    n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), ".%06llu",
                       static_cast<unsigned long long>(frac));
  }
  out.append(buf, static_cast<size_t>(n));
}

}  // namespace detail

// "YYYY-MM-DD" (years before 0001 are astronomical: 0000, -0001, ...).
inline std::string FormatDate32(int32_t days) {
  std::string out;
  detail::AppendCivilDate(out, days);
  return out;
}

// "YYYY-MM-DD HH:MM:SS[.ffffff][+00]": the fraction only when non-zero, "+00"
// when `with_tz` (the value is UTC).
inline std::string FormatTimestamp(int64_t micros, bool with_tz) {
  constexpr int64_t kDay = 86400LL * 1000000LL;
  int64_t days = micros / kDay;
  int64_t rem = micros % kDay;
  if (rem < 0) {  // floor towards -infinity: pre-1970 instants
    rem += kDay;
    --days;
  }
  std::string out;
  detail::AppendCivilDate(out, days);
  out.push_back(' ');
  detail::AppendClock(out, static_cast<uint64_t>(rem));
  if (with_tz) out.append("+00");
  return out;
}

// "HH:MM:SS[.ffffff]" for microseconds since midnight ("24:00:00" allowed;
// negative values get a leading '-').
inline std::string FormatTime(int64_t micros) {
  std::string out;
  uint64_t magnitude = static_cast<uint64_t>(micros);
  if (micros < 0) {
    out.push_back('-');
    magnitude = 0 - magnitude;
  }
  detail::AppendClock(out, magnitude);
  return out;
}

}  // namespace airlock::arrow
