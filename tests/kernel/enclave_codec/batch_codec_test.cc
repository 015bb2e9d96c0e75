// Batch codec: schema and batch round trips (every type, nulls, slices, 100k
// rows, zero copy) and rejection of truncated, lying or corrupted payloads.
#include "kernel/enclave/batch_codec.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace airlock {
namespace {

using arrow::BatchView;
using arrow::Field;
using arrow::OwnedArray;
using arrow::OwnedSchema;
using arrow::RecordBatchBuilder;
using arrow::Type;

std::vector<Field> AllTypes() {
  return {
      {"n", Type::kNull},
      {"flag", Type::kBool},
      {"i32", Type::kInt32},
      {"i64", Type::kInt64},
      {"f64", Type::kFloat64},
      {"text", Type::kUtf8},
      {"blob", Type::kBinary},
      {"day", Type::kDate32},
      {"at", Type::kTimestampMicros, "UTC"},
      {"clock", Type::kTime64Micros, "", false},
  };
}

// Fills `rows` rows; (r * 7 + col) % 5 == 0 is null except in the last column.
void FillAllTypes(RecordBatchBuilder& b, size_t rows, size_t first = 0) {
  for (size_t k = 0; k < rows; ++k) {
    const size_t r = first + k;
    const auto i = static_cast<int64_t>(r);
    auto null_at = [&](size_t col) { return col != 9 && (r * 7 + col) % 5 == 0; };
    b.AppendNull(0);
    null_at(1) ? b.AppendNull(1) : b.AppendBool(1, r % 3 == 1);
    null_at(2) ? b.AppendNull(2) : b.AppendInt32(2, static_cast<int32_t>(i * 3 - 50));
    null_at(3) ? b.AppendNull(3) : b.AppendInt64(3, i * -123456789LL);
    null_at(4) ? b.AppendNull(4) : b.AppendDouble(4, static_cast<double>(i) * 0.5);
    if (null_at(5)) {
      b.AppendNull(5);
    } else {
      b.AppendString(5, "row-" + std::to_string(r) + std::string(r % 4, 'x'));
    }
    if (null_at(6)) {
      b.AppendNull(6);
    } else {
      b.AppendString(6, std::string(r % 3, '\0') + "\x01\xfe");
    }
    null_at(7) ? b.AppendNull(7) : b.AppendDate32(7, static_cast<int32_t>(i - 1000));
    null_at(8) ? b.AppendNull(8) : b.AppendTimestamp(8, i * 1000003 - 7);
    b.AppendTime(9, i % 86400 * 1000000);
  }
}

// Asserts that two views hold the same cells (null slots are not compared).
void ExpectSameCells(const BatchView& a, const BatchView& b) {
  ASSERT_EQ(a.num_rows(), b.num_rows());
  ASSERT_EQ(a.num_columns(), b.num_columns());
  for (size_t col = 0; col < a.num_columns(); ++col) {
    ASSERT_EQ(a.field(col).type, b.field(col).type);
    for (size_t r = 0; r < a.num_rows(); ++r) {
      ASSERT_EQ(a.IsNull(col, r), b.IsNull(col, r)) << "col " << col << " row " << r;
      if (a.IsNull(col, r)) continue;
      switch (a.field(col).type) {
        case Type::kNull:
          break;
        case Type::kBool:
          ASSERT_EQ(a.GetBool(col, r), b.GetBool(col, r));
          break;
        case Type::kInt32:
          ASSERT_EQ(a.GetInt32(col, r), b.GetInt32(col, r));
          break;
        case Type::kInt64:
          ASSERT_EQ(a.GetInt64(col, r), b.GetInt64(col, r));
          break;
        case Type::kFloat64:
          ASSERT_EQ(a.GetDouble(col, r), b.GetDouble(col, r));
          break;
        case Type::kUtf8:
        case Type::kBinary:
          ASSERT_EQ(a.GetString(col, r), b.GetString(col, r));
          break;
        case Type::kDate32:
          ASSERT_EQ(a.GetDate32(col, r), b.GetDate32(col, r));
          break;
        case Type::kTimestampMicros:
          ASSERT_EQ(a.GetTimestamp(col, r), b.GetTimestamp(col, r));
          break;
        case Type::kTime64Micros:
          ASSERT_EQ(a.GetTime(col, r), b.GetTime(col, r));
          break;
      }
    }
  }
}

// Reads every cell, so that ASan sees any out-of-bounds buffer.
uint64_t TouchEveryCell(const BatchView& v) {
  uint64_t sum = 0;
  for (size_t col = 0; col < v.num_columns(); ++col) {
    for (size_t r = 0; r < v.num_rows(); ++r) {
      if (v.IsNull(col, r)) continue;
      switch (v.field(col).type) {
        case Type::kNull:
          break;
        case Type::kBool:
          sum += v.GetBool(col, r) ? 1 : 0;
          break;
        case Type::kInt32:
          sum += static_cast<uint64_t>(v.GetInt32(col, r));
          break;
        case Type::kDate32:
          sum += static_cast<uint64_t>(v.GetDate32(col, r));
          break;
        case Type::kFloat64:
          sum += static_cast<uint64_t>(v.GetDouble(col, r) != 0.0);
          break;
        case Type::kUtf8:
        case Type::kBinary: {
          for (char c : v.GetString(col, r)) sum += static_cast<uint8_t>(c);
          break;
        }
        case Type::kInt64:
          sum += static_cast<uint64_t>(v.GetInt64(col, r));
          break;
        case Type::kTimestampMicros:
          sum += static_cast<uint64_t>(v.GetTimestamp(col, r));
          break;
        case Type::kTime64Micros:
          sum += static_cast<uint64_t>(v.GetTime(col, r));
          break;
      }
    }
  }
  return sum;
}

// Builds a batch and encodes it; keeps the source alive for comparisons.
struct Encoded {
  Encoded(const std::vector<Field>& fields, size_t rows) : builder(fields) {
    FillAllTypes(builder, rows);
    schema = builder.MakeSchema();
    array = builder.Finish();
    auto made = BatchView::Make(*schema.get(), *array.get());
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    EncodeBatch(*made, &payload);
  }
  BatchView view() const { return BatchView::Make(*schema.get(), *array.get()).value(); }
  RecordBatchBuilder builder;
  OwnedSchema schema;
  OwnedArray array;
  std::string payload;
};

Result<OwnedArray> Decode(const std::vector<Field>& fields, std::string payload) {
  return DecodeBatch(fields, std::move(payload));
}

// ---- schema ----------------------------------------------------------------

TEST(SchemaCodec, RoundTripsEveryType) {
  std::vector<Field> fields = AllTypes();
  fields.push_back({"naïve ts", Type::kTimestampMicros, "", true});
  fields.push_back({"", Type::kInt64, "", false});
  auto decoded = DecodeSchema(EncodeSchema(fields));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, fields);
  auto empty = DecodeSchema(EncodeSchema({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(SchemaCodec, RejectsEveryTruncation) {
  const std::string bytes = EncodeSchema(AllTypes());
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_EQ(DecodeSchema(std::string_view(bytes).substr(0, len)).status().code(),
              StatusCode::kInvalidArgument)
        << len;
  }
}

TEST(SchemaCodec, RejectsMalformedInput) {
  const std::string good = EncodeSchema({{"ab", Type::kInt32}});
  // Layout: magic(4) count(4) type(1)@8 flags(1)@9 name_len(4)@10 name@14 tz_len(4)@16
  auto with = [&](size_t pos, char byte) {
    std::string s = good;
    s[pos] = byte;
    return DecodeSchema(s).status().code();
  };
  EXPECT_EQ(with(0, 'X'), StatusCode::kInvalidArgument);    // magic
  EXPECT_EQ(with(8, 10), StatusCode::kInvalidArgument);     // unknown type
  EXPECT_EQ(with(9, 2), StatusCode::kInvalidArgument);      // unknown flag
  EXPECT_EQ(with(10, 3), StatusCode::kInvalidArgument);     // name longer than the rest
  EXPECT_EQ(with(14, '\0'), StatusCode::kInvalidArgument);  // NUL in the name
  EXPECT_EQ(DecodeSchema(good + "x").status().code(), StatusCode::kInvalidArgument);
  // A timezone on a non-timestamp field.
  std::string tz = good;
  tz[16] = 1;
  tz += "Z";
  EXPECT_EQ(DecodeSchema(tz).status().code(), StatusCode::kInvalidArgument);
  // A field count far beyond the bytes present (and the limit).
  std::string many = good;
  many[4] = '\xff';
  many[5] = '\xff';
  EXPECT_EQ(DecodeSchema(many).status().code(), StatusCode::kInvalidArgument);
}

TEST(SchemaCodec, RefusesNamesBeyondTheLimit) {
  const std::string name(kMaxFieldNameBytes + 1, 'n');
  EXPECT_EQ(DecodeSchema(EncodeSchema({{name, Type::kInt32}})).status().code(),
            StatusCode::kInvalidArgument);
  const std::string huge(70000, 'n');  // longer than any 16-bit length could say
  EXPECT_EQ(DecodeSchema(EncodeSchema({{huge, Type::kInt32}})).status().code(),
            StatusCode::kInvalidArgument);
  auto at_limit = DecodeSchema(EncodeSchema({{std::string(kMaxFieldNameBytes, 'n'), Type::kBool}}));
  ASSERT_TRUE(at_limit.ok());
  EXPECT_EQ(at_limit->at(0).name.size(), kMaxFieldNameBytes);
}

// ---- batches: round trips --------------------------------------------------

TEST(BatchCodec, RoundTripsEveryTypeWithNulls) {
  Encoded enc(AllTypes(), 61);
  auto decoded = Decode(AllTypes(), enc.payload);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const ArrowArray& arr = *decoded->get();
  ASSERT_EQ(arr.length, 61);
  ASSERT_EQ(arr.n_children, 10);
  auto view = BatchView::Make(AllTypes(), arr);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ExpectSameCells(enc.view(), *view);
  for (int64_t c = 0; c < arr.n_children; ++c) {
    EXPECT_EQ(arr.children[c]->offset, 0);
    EXPECT_EQ(arr.children[c]->null_count, enc.array->children[c]->null_count) << c;
  }
  EXPECT_EQ(arr.children[9]->buffers[0], nullptr);  // no nulls: no bitmap on the wire
  EXPECT_NE(arr.children[5]->buffers[0], nullptr);
}

TEST(BatchCodec, DecodedBuffersPointIntoThePayload) {
  Encoded enc(AllTypes(), 40);
  std::string payload = enc.payload;
  const char* begin = payload.data();
  const char* end = begin + payload.size();
  auto decoded = Decode(AllTypes(), std::move(payload));
  ASSERT_TRUE(decoded.ok());
  for (int64_t c = 0; c < (*decoded)->n_children; ++c) {
    const ArrowArray* child = (*decoded)->children[c];
    for (int64_t b = 0; b < child->n_buffers; ++b) {
      const auto* p = static_cast<const char*>(child->buffers[b]);
      if (p == nullptr) continue;
      EXPECT_TRUE(p >= begin && p < end) << "column " << c << " buffer " << b;
    }
  }
}

TEST(BatchCodec, DecodedChildrenOutliveTheParent) {
  Encoded enc(AllTypes(), 20);
  auto decoded = Decode(AllTypes(), enc.payload);
  ASSERT_TRUE(decoded.ok());
  ArrowArray text{};
  text = *(*decoded)->children[5];
  (*decoded)->children[5]->release = nullptr;
  decoded->reset();  // the payload stays alive for the moved-out child
  OwnedArray child = OwnedArray::TakeFrom(&text);
  const auto* offsets = static_cast<const int32_t*>(child->buffers[2 - 1]);
  const auto* data = static_cast<const char*>(child->buffers[2]);
  EXPECT_EQ(std::string(data + offsets[19], data + offsets[20]), "row-19xxx");
}

TEST(BatchCodec, NormalisesSlicedAndStructNullViews) {
  Encoded enc(AllTypes(), 50);
  // A borrowed slice of rows 13..41 with struct-level nulls at odd bit offsets.
  ArrowArray slice = *enc.array.get();
  uint8_t struct_validity[7];
  std::memset(struct_validity, 0xFF, sizeof struct_validity);
  struct_validity[2] &= static_cast<uint8_t>(~(1u << 4));  // row 20 -> slice row 7
  const void* struct_buffers[1] = {struct_validity};
  slice.buffers = struct_buffers;
  slice.null_count = 1;
  slice.offset = 13;
  slice.length = 29;
  auto source = BatchView::Make(AllTypes(), slice);
  ASSERT_TRUE(source.ok()) << source.status().ToString();

  std::string payload;
  EncodeBatch(*source, &payload);
  std::vector<Field> nullable = AllTypes();
  nullable[9].nullable = true;  // the struct null reaches the non-nullable column
  auto decoded = Decode(nullable, payload);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  auto view = BatchView::Make(nullable, *decoded->get());
  ASSERT_TRUE(view.ok());
  ExpectSameCells(*source, *view);
  for (size_t col = 0; col < view->num_columns(); ++col) EXPECT_TRUE(view->IsNull(col, 7));
  EXPECT_EQ((*decoded)->children[9]->null_count, 1);

  // The same payload against the declared non-nullable column is refused.
  EXPECT_EQ(Decode(AllTypes(), payload).status().code(), StatusCode::kInvalidArgument);
}

TEST(BatchCodec, EncodeAppendsAfterExistingBytes) {
  Encoded enc(AllTypes(), 9);
  std::string framed = "HDR";
  EncodeBatch(enc.view(), &framed);
  ASSERT_EQ(framed.substr(3), enc.payload);
  auto decoded = Decode(AllTypes(), framed.substr(3));
  ASSERT_TRUE(decoded.ok());
}

TEST(BatchCodec, RoundTripsEmptyBatches) {
  Encoded enc(AllTypes(), 0);
  auto decoded = Decode(AllTypes(), enc.payload);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ((*decoded)->length, 0);
  ASSERT_TRUE(BatchView::Make(AllTypes(), *decoded->get()).ok());

  RecordBatchBuilder none(std::vector<Field>{});
  OwnedSchema schema = none.MakeSchema();
  OwnedArray array = none.Finish();
  std::string payload;
  EncodeBatch(BatchView::Make(*schema.get(), *array.get()).value(), &payload);
  EXPECT_EQ(payload.size(), 16u);
  EXPECT_TRUE(Decode({}, payload).ok());
}

TEST(BatchCodec, RoundTrips100kRows) {
  constexpr size_t kRows = 100000;
  Encoded enc(AllTypes(), kRows);
  auto decoded = Decode(AllTypes(), enc.payload);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  auto view = BatchView::Make(AllTypes(), *decoded->get());
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(view->num_rows(), kRows);
  ExpectSameCells(enc.view(), *view);
  EXPECT_EQ(view->GetString(5, kRows - 1), "row-99999xxx");
}

// ---- batches: hostile payloads ---------------------------------------------

TEST(BatchCodec, RejectsEveryTruncationOfASmallBatch) {
  Encoded enc(AllTypes(), 23);
  for (size_t len = 0; len < enc.payload.size(); ++len) {
    auto decoded = Decode(AllTypes(), enc.payload.substr(0, len));
    ASSERT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << "length " << len;
  }
}

TEST(BatchCodec, RejectsRandomTruncationsOfALargeBatch) {
  Encoded enc(AllTypes(), 20000);
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<size_t> cut(0, enc.payload.size() - 1);
  for (int i = 0; i < 300; ++i) {
    const size_t len = cut(rng);
    ASSERT_EQ(Decode(AllTypes(), enc.payload.substr(0, len)).status().code(),
              StatusCode::kInvalidArgument)
        << "length " << len;
  }
}

// One utf8 column of {"ab", "c", "defg"}:
//   0 header(16) | 16 column header(8) | 24 offsets 0,2,3,7 (16) | 40 data_len(8)
//   | 48 "abcdefg" + 1 pad
class CorruptStrings : public ::testing::Test {
 protected:
  CorruptStrings() : fields_{{"s", Type::kUtf8}}, builder_(fields_) {
    for (const char* s : {"ab", "c", "defg"}) builder_.AppendString(0, s);
    OwnedSchema schema = builder_.MakeSchema();
    OwnedArray array = builder_.Finish();
    EncodeBatch(BatchView::Make(*schema.get(), *array.get()).value(), &good_);
  }
  template <typename T>
  std::string With(size_t pos, T value) const {
    std::string s = good_;
    std::memcpy(s.data() + pos, &value, sizeof(T));
    return s;
  }
  StatusCode Code(std::string payload) const {
    return Decode(fields_, std::move(payload)).status().code();
  }
  std::vector<Field> fields_;
  RecordBatchBuilder builder_;
  std::string good_;
};

TEST_F(CorruptStrings, TheGoodPayloadHasTheDocumentedLayout) {
  ASSERT_EQ(good_.size(), 56u);
  int32_t offsets[4];
  std::memcpy(offsets, good_.data() + 24, sizeof offsets);
  EXPECT_EQ(offsets[3], 7);
  EXPECT_EQ(good_.substr(48, 7), "abcdefg");
  auto decoded = Decode(fields_, good_);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  auto view = BatchView::Make(fields_, *decoded->get());
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->GetString(0, 2), "defg");
}

TEST_F(CorruptStrings, LyingLengths) {
  EXPECT_EQ(Code(With<uint64_t>(40, 1000)), StatusCode::kInvalidArgument);  // data_len
  EXPECT_EQ(Code(With<uint64_t>(40, ~0ULL)), StatusCode::kInvalidArgument);
  std::string both = With<int32_t>(36, 100);  // last offset and data_len agree, bytes absent
  std::memcpy(both.data() + 40, "\x64\0\0\0\0\0\0\0", 8);
  EXPECT_EQ(Code(both), StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(With<uint64_t>(8, 4)), StatusCode::kInvalidArgument);  // rows
  EXPECT_EQ(Code(With<uint64_t>(8, 1ULL << 40)), StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(With<uint64_t>(8, 0x7FFFFFFF)), StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(With<uint32_t>(4, 2)), StatusCode::kInvalidArgument);  // columns
}

TEST_F(CorruptStrings, OffsetsOutOfRangeOrNotMonotonic) {
  EXPECT_EQ(Code(With<int32_t>(28, 9)), StatusCode::kInvalidArgument);   // past the last
  EXPECT_EQ(Code(With<int32_t>(28, -1)), StatusCode::kInvalidArgument);  // negative
  EXPECT_EQ(Code(With<int32_t>(32, 1)), StatusCode::kInvalidArgument);   // 0,2,1,7
  EXPECT_EQ(Code(With<int32_t>(24, 1)), StatusCode::kInvalidArgument);   // first not 0
  EXPECT_EQ(Code(With<int32_t>(36, 8)), StatusCode::kInvalidArgument);   // last != data_len
  EXPECT_EQ(Code(With<int32_t>(36, 0x7FFFFFFF)), StatusCode::kInvalidArgument);
}

TEST_F(CorruptStrings, BadTagsPaddingAndTrailingBytes) {
  EXPECT_EQ(Code(With<uint8_t>(0, 'X')), StatusCode::kInvalidArgument);  // magic
  EXPECT_EQ(Code(With<uint8_t>(16, static_cast<uint8_t>(Type::kBinary))),
            StatusCode::kInvalidArgument);  // type
  EXPECT_EQ(Code(With<uint8_t>(16, 200)), StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(With<uint8_t>(17, 2)), StatusCode::kInvalidArgument);          // flag
  EXPECT_EQ(Code(With<uint8_t>(20, 1)), StatusCode::kInvalidArgument);          // reserved
  EXPECT_EQ(Code(With<uint8_t>(55, 1)), StatusCode::kInvalidArgument);          // padding
  EXPECT_EQ(Code(good_ + std::string(8, '\0')), StatusCode::kInvalidArgument);  // trailing
  // A validity bitmap announced but absent: the column runs out of bytes.
  EXPECT_EQ(Code(With<uint8_t>(17, 1)), StatusCode::kInvalidArgument);
}

TEST(BatchCodec, RejectsSchemaMismatches) {
  Encoded enc(AllTypes(), 5);
  std::vector<Field> fewer = AllTypes();
  fewer.pop_back();
  EXPECT_EQ(Decode(fewer, enc.payload).status().code(), StatusCode::kInvalidArgument);
  std::vector<Field> other = AllTypes();
  other[3].type = Type::kFloat64;  // same width, different tag
  EXPECT_EQ(Decode(other, enc.payload).status().code(), StatusCode::kInvalidArgument);
}

TEST(BatchCodec, RandomCorruptionIsRejectedOrDecodesSafely) {
  Encoded enc(AllTypes(), 45);
  std::mt19937_64 rng(987654321);
  std::uniform_int_distribution<size_t> pos(0, enc.payload.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> flips(1, 4);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string payload = enc.payload;
    for (int f = flips(rng); f > 0; --f) payload[pos(rng)] = static_cast<char>(byte(rng));
    auto decoded = Decode(AllTypes(), std::move(payload));
    if (!decoded.ok()) {
      ASSERT_EQ(decoded.status().code(), StatusCode::kInvalidArgument)
          << decoded.status().ToString();
      continue;
    }
    ++accepted;
    auto view = BatchView::Make(AllTypes(), *decoded->get());
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    TouchEveryCell(*view);
  }
  // Value bytes carry no checks, so some corruptions must decode.
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace airlock
