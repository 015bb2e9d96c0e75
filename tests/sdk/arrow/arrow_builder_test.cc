// RecordBatchBuilder: every type with nulls read back through BatchView, the
// produced schema, buffer layout rules, reuse after Finish, child moves.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "airlock/cpp/arrow.hpp"

namespace airlock::arrow {
namespace {

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
      {"naive", Type::kTimestampMicros, ""},
      {"clock", Type::kTime64Micros, "", false},
  };
}

// Row r of the reference data; every column is null when (r + col) % 4 == 1,
// except the non-nullable last column.
bool RefNull(size_t col, size_t r) {
  return col != 10 && (r + col) % 4 == 1;
}
std::string RefString(size_t r) {
  return r % 5 == 0 ? "" : "v" + std::to_string(r * 31);
}

void AppendRefRow(RecordBatchBuilder& b, size_t r) {
  const auto i = static_cast<int64_t>(r);
  b.AppendNull(0);
  auto each = [&](size_t col, auto append) {
    if (RefNull(col, r)) {
      b.AppendNull(col);
    } else {
      append();
    }
  };
  each(1, [&] { b.AppendBool(1, r % 3 == 0); });
  each(2, [&] { b.AppendInt32(2, static_cast<int32_t>(-1000 + i)); });
  each(3, [&] { b.AppendInt64(3, i * 1000000007LL - 5); });
  each(4, [&] { b.AppendDouble(4, static_cast<double>(i) / 8.0 - 3.25); });
  each(5, [&] { EXPECT_TRUE(b.AppendString(5, RefString(r))); });
  each(6, [&] { EXPECT_TRUE(b.AppendString(6, std::string("\0\xff", 2) + RefString(r))); });
  each(7, [&] { b.AppendDate32(7, static_cast<int32_t>(-400 + i * 3)); });
  each(8, [&] { b.AppendTimestamp(8, -1 + i * 1000001); });
  each(9, [&] { b.AppendTimestamp(9, i * 7); });
  each(10, [&] { b.AppendTime(10, i * 1000); });
}

void ExpectRefRow(const BatchView& v, size_t row, size_t r) {
  EXPECT_TRUE(v.IsNull(0, row));
  for (size_t col = 1; col < 11; ++col) {
    ASSERT_EQ(v.IsNull(col, row), RefNull(col, r)) << "col " << col << " row " << r;
  }
  const auto i = static_cast<int64_t>(r);
  if (!RefNull(1, r)) {
    EXPECT_EQ(v.GetBool(1, row), r % 3 == 0);
  }
  if (!RefNull(2, r)) {
    EXPECT_EQ(v.GetInt32(2, row), -1000 + i);
  }
  if (!RefNull(3, r)) {
    EXPECT_EQ(v.GetInt64(3, row), i * 1000000007LL - 5);
  }
  if (!RefNull(4, r)) {
    EXPECT_EQ(v.GetDouble(4, row), static_cast<double>(i) / 8.0 - 3.25);
  }
  if (!RefNull(5, r)) {
    EXPECT_EQ(v.GetString(5, row), RefString(r));
  }
  if (!RefNull(6, r)) {
    EXPECT_EQ(v.GetString(6, row), std::string("\0\xff", 2) + RefString(r));
  }
  if (!RefNull(7, r)) {
    EXPECT_EQ(v.GetDate32(7, row), -400 + i * 3);
  }
  if (!RefNull(8, r)) {
    EXPECT_EQ(v.GetTimestamp(8, row), -1 + i * 1000001);
  }
  if (!RefNull(9, r)) {
    EXPECT_EQ(v.GetTimestamp(9, row), i * 7);
  }
  EXPECT_EQ(v.GetTime(10, row), i * 1000);
}

TEST(RecordBatchBuilder, EveryTypeWithNullsReadsBack) {
  RecordBatchBuilder builder(AllTypes());
  constexpr size_t kRows = 37;  // not a multiple of 8: exercises bitmap tails
  for (size_t r = 0; r < kRows; ++r) AppendRefRow(builder, r);
  EXPECT_EQ(builder.rows(), kRows);

  OwnedSchema schema = builder.MakeSchema();
  OwnedArray array = builder.Finish();
  EXPECT_EQ(builder.rows(), 0u);
  ASSERT_EQ(array->length, static_cast<int64_t>(kRows));
  EXPECT_EQ(array->null_count, 0);
  EXPECT_EQ(array->n_buffers, 1);
  EXPECT_EQ(array->buffers[0], nullptr);

  auto view = BatchView::Make(*schema.get(), *array.get());
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ASSERT_EQ(view->num_rows(), kRows);
  ASSERT_EQ(view->num_columns(), 11u);
  EXPECT_EQ(view->fields(), AllTypes());
  for (size_t r = 0; r < kRows; ++r) ExpectRefRow(*view, r, r);

  // null_count matches the appended nulls; the null column counts every row.
  EXPECT_EQ(array->children[0]->null_count, static_cast<int64_t>(kRows));
  EXPECT_EQ(array->children[0]->n_buffers, 0);
  for (size_t col = 1; col < 10; ++col) {
    int64_t nulls = 0;
    for (size_t r = 0; r < kRows; ++r) nulls += RefNull(col, r) ? 1 : 0;
    EXPECT_EQ(array->children[col]->null_count, nulls) << col;
  }
}

TEST(RecordBatchBuilder, SchemaIsStructOfNamedNullableChildren) {
  RecordBatchBuilder builder(AllTypes());
  OwnedSchema schema = builder.MakeSchema();
  EXPECT_STREQ(schema->format, "+s");
  ASSERT_EQ(schema->n_children, 11);
  const char* formats[] = {"n", "b", "i", "l", "g", "u", "z", "tdD", "tsu:UTC", "tsu:", "ttu"};
  for (int i = 0; i < 11; ++i) {
    EXPECT_STREQ(schema->children[i]->format, formats[i]);
    EXPECT_EQ(schema->children[i]->name, AllTypes()[static_cast<size_t>(i)].name);
    EXPECT_EQ((schema->children[i]->flags & ARROW_FLAG_NULLABLE) != 0, i != 10);
  }
}

TEST(RecordBatchBuilder, NoValidityBitmapUnlessANullWasAppended) {
  RecordBatchBuilder builder({{"a", Type::kInt64}, {"b", Type::kUtf8}, {"c", Type::kBool}});
  for (int i = 0; i < 20; ++i) {
    builder.AppendInt64(0, i);
    builder.AppendString(1, "x");
    builder.AppendBool(2, true);
  }
  OwnedArray array = builder.Finish();
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(array->children[c]->buffers[0], nullptr);
    EXPECT_EQ(array->children[c]->null_count, 0);
  }
}

TEST(RecordBatchBuilder, LateFirstNullKeepsEarlierRowsValid) {
  RecordBatchBuilder builder({{"a", Type::kInt32}});
  for (int i = 0; i < 13; ++i) builder.AppendInt32(0, i);
  builder.AppendNull(0);
  builder.AppendInt32(0, 99);
  OwnedSchema schema = builder.MakeSchema();
  OwnedArray array = builder.Finish();
  ASSERT_NE(array->children[0]->buffers[0], nullptr);
  auto view = BatchView::Make(*schema.get(), *array.get());
  ASSERT_TRUE(view.ok());
  for (size_t r = 0; r < 13; ++r) {
    EXPECT_FALSE(view->IsNull(0, r));
    EXPECT_EQ(view->GetInt32(0, r), static_cast<int32_t>(r));
  }
  EXPECT_TRUE(view->IsNull(0, 13));
  EXPECT_FALSE(view->IsNull(0, 14));
  EXPECT_EQ(view->GetInt32(0, 14), 99);
  // Bits past the length are zero.
  const auto* bits = static_cast<const uint8_t*>(array->children[0]->buffers[0]);
  EXPECT_EQ(bits[0], 0xFF);
  EXPECT_EQ(bits[1], 0x5F);  // rows 8..12 valid, 13 null, 14 valid
}

TEST(RecordBatchBuilder, BuffersAre64ByteAligned) {
  RecordBatchBuilder builder({{"a", Type::kInt64}, {"s", Type::kUtf8}, {"b", Type::kBool}});
  for (int i = 0; i < 100; ++i) {
    builder.AppendInt64(0, i);
    if (i % 7 == 0) {
      builder.AppendNull(1);
    } else {
      builder.AppendString(1, "abc");
    }
    builder.AppendBool(2, i % 2 == 0);
  }
  OwnedArray array = builder.Finish();
  for (int c = 0; c < 3; ++c) {
    const ArrowArray* child = array->children[c];
    for (int64_t b = 0; b < child->n_buffers; ++b) {
      if (child->buffers[b] == nullptr) continue;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(child->buffers[b]) % 64, 0u) << c << "/" << b;
    }
  }
}

TEST(RecordBatchBuilder, EmptyBatchHasValidBuffers) {
  RecordBatchBuilder builder(AllTypes());
  OwnedSchema schema = builder.MakeSchema();
  OwnedArray array = builder.Finish();
  EXPECT_EQ(array->length, 0);
  auto view = BatchView::Make(*schema.get(), *array.get());
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->num_rows(), 0u);
  const ArrowArray* text = array->children[5];
  ASSERT_NE(text->buffers[1], nullptr);
  int32_t first = -1;
  std::memcpy(&first, text->buffers[1], sizeof first);
  EXPECT_EQ(first, 0);
  EXPECT_NE(text->buffers[2], nullptr);
  EXPECT_NE(array->children[3]->buffers[1], nullptr);
}

TEST(RecordBatchBuilder, ReusableAfterFinishAndBatchesAreIndependent) {
  RecordBatchBuilder builder(AllTypes(), 16);
  for (size_t r = 0; r < 10; ++r) AppendRefRow(builder, r);
  OwnedSchema schema = builder.MakeSchema();
  OwnedArray first = builder.Finish();
  EXPECT_EQ(builder.rows(), 0u);
  EXPECT_LE(builder.bytes(), 2 * sizeof(int32_t));  // just the leading zero offsets
  for (size_t r = 100; r < 125; ++r) AppendRefRow(builder, r);
  OwnedArray second = builder.Finish();
  for (size_t r = 0; r < 3; ++r) AppendRefRow(builder, r);  // left unfinished

  auto v1 = BatchView::Make(*schema.get(), *first.get());
  auto v2 = BatchView::Make(*schema.get(), *second.get());
  ASSERT_TRUE(v1.ok() && v2.ok());
  ASSERT_EQ(v1->num_rows(), 10u);
  ASSERT_EQ(v2->num_rows(), 25u);
  for (size_t r = 0; r < 10; ++r) ExpectRefRow(*v1, r, r);
  for (size_t r = 0; r < 25; ++r) ExpectRefRow(*v2, r, r + 100);
}

TEST(RecordBatchBuilder, BytesTracksAppendedPayload) {
  RecordBatchBuilder builder({{"a", Type::kInt64}, {"s", Type::kUtf8}});
  EXPECT_EQ(builder.bytes(), sizeof(int32_t));  // the initial zero offset
  builder.AppendInt64(0, 1);
  builder.AppendString(1, std::string(1000, 'x'));
  EXPECT_GE(builder.bytes(), 1000u + 8u);
  EXPECT_LT(builder.bytes(), 1100u);
}

TEST(RecordBatchBuilder, ManyRowsStayCorrect) {
  RecordBatchBuilder builder({{"i", Type::kInt64}, {"s", Type::kUtf8}, {"b", Type::kBool}});
  constexpr int kRows = 200000;
  for (int i = 0; i < kRows; ++i) {
    builder.AppendInt64(0, i);
    builder.AppendString(1, std::to_string(i));
    if (i % 1000 == 999) {
      builder.AppendNull(2);
    } else {
      builder.AppendBool(2, (i & 1) != 0);
    }
  }
  OwnedSchema schema = builder.MakeSchema();
  OwnedArray array = builder.Finish();
  auto view = BatchView::Make(*schema.get(), *array.get());
  ASSERT_TRUE(view.ok());
  for (size_t r = 0; r < kRows; r += 1) {
    ASSERT_EQ(view->GetInt64(0, r), static_cast<int64_t>(r));
    ASSERT_EQ(view->GetString(1, r), std::to_string(r));
    ASSERT_EQ(view->IsNull(2, r), r % 1000 == 999);
    if (r % 1000 != 999) {
      ASSERT_EQ(view->GetBool(2, r), (r & 1) != 0);
    }
  }
  EXPECT_EQ(array->children[2]->null_count, kRows / 1000);
}

TEST(RecordBatchBuilder, WrongTypedAppendIsAProgrammingError) {
  RecordBatchBuilder builder({{"s", Type::kUtf8}, {"i", Type::kInt32}});
  EXPECT_DEBUG_DEATH(builder.AppendInt64(0, 1), "");
  EXPECT_DEBUG_DEATH(builder.AppendString(1, "x"), "");
  EXPECT_DEBUG_DEATH(builder.AppendInt32(7, 1), "");
#ifdef NDEBUG
  // Release builds keep the batch consistent: the bad values became nulls.
  EXPECT_EQ(builder.rows(), 1u);
  OwnedSchema schema = builder.MakeSchema();
  OwnedArray array = builder.Finish();
  auto view = BatchView::Make(*schema.get(), *array.get());
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->IsNull(0, 0));
  EXPECT_TRUE(view->IsNull(1, 0));
#else
  EXPECT_EQ(builder.rows(), 0u);
#endif
}

TEST(RecordBatchBuilder, MovedOutChildOutlivesItsParent) {
  RecordBatchBuilder builder({{"i", Type::kInt64}, {"s", Type::kUtf8}});
  for (int i = 0; i < 50; ++i) {
    builder.AppendInt64(0, i * 3);
    builder.AppendString(1, "row" + std::to_string(i));
  }
  OwnedSchema schema = builder.MakeSchema();
  OwnedArray parent = builder.Finish();
  ArrowArray raw_child{};
  ArrowSchema raw_child_schema{};
  // Spec move of a child: bitwise copy, null the source's release.
  raw_child = *parent->children[1];
  parent->children[1]->release = nullptr;
  raw_child_schema = *schema->children[1];
  schema->children[1]->release = nullptr;
  parent.reset();
  schema.reset();

  OwnedArray child = OwnedArray::TakeFrom(&raw_child);
  OwnedSchema child_schema = OwnedSchema::TakeFrom(&raw_child_schema);
  EXPECT_STREQ(child_schema->format, "u");
  EXPECT_STREQ(child_schema->name, "s");
  ASSERT_EQ(child->length, 50);
  const auto* offsets = static_cast<const int32_t*>(child->buffers[1]);
  const auto* data = static_cast<const char*>(child->buffers[2]);
  EXPECT_EQ(std::string(data + offsets[49], data + offsets[50]), "row49");
}

}  // namespace
}  // namespace airlock::arrow
