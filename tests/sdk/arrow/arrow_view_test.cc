// BatchView over arrays from other producers: hand-made buffers with struct
// and child offsets, unknown null counts, struct-level nulls; validation
// failures; ParseField / FormatString.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "airlock/cpp/arrow.hpp"

namespace airlock::arrow {
namespace {

void NoopArrayRelease(ArrowArray* a) {
  a->release = nullptr;
}
void NoopSchemaRelease(ArrowSchema* s) {
  s->release = nullptr;
}

ArrowArray Leaf(int64_t length, int64_t offset, int64_t null_count,
                std::vector<const void*>& buffers) {
  ArrowArray a{};
  a.length = length;
  a.offset = offset;
  a.null_count = null_count;
  a.n_buffers = static_cast<int64_t>(buffers.size());
  a.buffers = buffers.data();
  a.release = &NoopArrayRelease;
  return a;
}

// A struct array assembled from test-owned buffers, the way a foreign producer
// might lay it out: every level sliced, bitmaps at odd bit offsets.
class ForeignBatch {
 public:
  // Logical rows: struct offset 1, length 3 (physical struct rows 1..3).
  ForeignBatch() {
    int_buffers_ = {int_validity_, int_values_};
    str_buffers_ = {nullptr, str_offsets_, str_data_};
    bool_buffers_ = {bool_validity_, bool_values_};
    date_buffers_ = {nullptr, date_values_};
    children_ = {
        Leaf(6, 3, 1, int_buffers_),    // rows -> physical 4, 5 (null), 6
        Leaf(4, 1, 0, str_buffers_),    // rows -> physical 2, 3, 4
        Leaf(4, 5, -1, bool_buffers_),  // rows -> physical 6, 7, 8 (null)
        Leaf(4, 0, -1, date_buffers_),  // unknown null count, no bitmap: no nulls
    };
    for (auto& c : children_) child_ptrs_.push_back(&c);
    struct_buffers_ = {nullptr};
    parent_ = Leaf(3, 1, 0, struct_buffers_);
    parent_.n_children = static_cast<int64_t>(children_.size());
    parent_.children = child_ptrs_.data();
  }

  static std::vector<Field> Fields() {
    return {{"i", Type::kInt32}, {"s", Type::kUtf8}, {"b", Type::kBool}, {"d", Type::kDate32}};
  }
  ArrowArray& array() { return parent_; }
  void SetStructValidity() {
    struct_buffers_[0] = struct_validity_;
    parent_.null_count = 1;
  }

 private:
  uint8_t int_validity_[2] = {0xDF, 0xFF};  // physical 5 null
  int32_t int_values_[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  int32_t str_offsets_[6] = {5, 6, 8, 8, 11, 15};
  char str_data_[16] = "zzzzzabcdefghij";
  uint8_t bool_validity_[2] = {0xFF, 0xFE};  // physical 8 null
  uint8_t bool_values_[2] = {0xB2, 0x01};    // bits 6,7,8 = 0,1,1
  int32_t date_values_[4] = {-10, 11, 12, 13};
  uint8_t struct_validity_[1] = {0xF7};  // physical struct row 3 null
  std::vector<const void*> int_buffers_, str_buffers_, bool_buffers_, date_buffers_,
      struct_buffers_;
  std::vector<ArrowArray> children_;
  std::vector<ArrowArray*> child_ptrs_;
  ArrowArray parent_{};
};

TEST(BatchView, HonoursStructAndChildOffsets) {
  ForeignBatch batch;
  OwnedSchema schema = MakeStructSchema(ForeignBatch::Fields());
  auto view = BatchView::Make(*schema.get(), batch.array());
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ASSERT_EQ(view->num_rows(), 3u);

  EXPECT_EQ(view->GetInt32(0, 0), 4);
  EXPECT_TRUE(view->IsNull(0, 1));
  EXPECT_EQ(view->GetInt32(0, 2), 6);

  EXPECT_EQ(view->GetString(1, 0), "");
  EXPECT_EQ(view->GetString(1, 1), "def");
  EXPECT_EQ(view->GetString(1, 2), "ghij");
  EXPECT_FALSE(view->IsNull(1, 2));

  EXPECT_FALSE(view->GetBool(2, 0));
  EXPECT_TRUE(view->GetBool(2, 1));
  EXPECT_TRUE(view->IsNull(2, 2));  // null_count -1 but a bitmap: the bitmap rules

  EXPECT_EQ(view->GetDate32(3, 0), 11);  // physical 1
  EXPECT_EQ(view->GetDate32(3, 2), 13);
  for (size_t r = 0; r < 3; ++r) EXPECT_FALSE(view->IsNull(3, r));
}

TEST(BatchView, StructLevelNullsNullEveryColumn) {
  ForeignBatch batch;
  batch.SetStructValidity();
  auto view = BatchView::Make(ForeignBatch::Fields(), batch.array());
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  for (size_t col = 0; col < 4; ++col) EXPECT_TRUE(view->IsNull(col, 2)) << col;
  EXPECT_FALSE(view->IsNull(0, 0));
  EXPECT_FALSE(view->IsNull(3, 1));
}

TEST(BatchView, SlicedBuilderOutputReadsTheSlice) {
  RecordBatchBuilder builder({{"i", Type::kInt64}, {"s", Type::kUtf8}, {"b", Type::kBool}});
  for (int i = 0; i < 20; ++i) {
    builder.AppendInt64(0, i);
    builder.AppendString(1, std::string(static_cast<size_t>(i), 'x'));
    if (i % 3 == 0) {
      builder.AppendNull(2);
    } else {
      builder.AppendBool(2, i % 2 == 0);
    }
  }
  OwnedSchema schema = builder.MakeSchema();
  OwnedArray array = builder.Finish();
  ArrowArray slice = *array.get();  // borrowed shallow copy; never released
  slice.offset = 11;
  slice.length = 7;
  auto view = BatchView::Make(*schema.get(), slice);
  ASSERT_TRUE(view.ok());
  for (size_t r = 0; r < 7; ++r) {
    const int i = static_cast<int>(r) + 11;
    EXPECT_EQ(view->GetInt64(0, r), i);
    EXPECT_EQ(view->GetString(1, r).size(), static_cast<size_t>(i));
    EXPECT_EQ(view->IsNull(2, r), i % 3 == 0);
    if (i % 3 != 0) {
      EXPECT_EQ(view->GetBool(2, r), i % 2 == 0);
    }
  }
  slice.length = 10;  // 11 + 10 > 20 child rows
  EXPECT_EQ(BatchView::Make(*schema.get(), slice).status().code(), StatusCode::kInvalidArgument);
}

// A shallow, tamperable copy of a produced struct array (never released).
struct Tampered {
  explicit Tampered(const ArrowArray& source) : parent(source) {
    for (int64_t i = 0; i < source.n_children; ++i) kids.push_back(*source.children[i]);
    for (auto& k : kids) ptrs.push_back(&k);
    parent.children = ptrs.data();
  }
  ArrowArray parent;
  std::vector<ArrowArray> kids;
  std::vector<ArrowArray*> ptrs;
};

class BatchViewRejects : public ::testing::Test {
 protected:
  BatchViewRejects() : builder_({{"i", Type::kInt32}, {"s", Type::kUtf8}}) {
    for (int i = 0; i < 5; ++i) {
      builder_.AppendInt32(0, i);
      builder_.AppendString(1, "v");
    }
    schema_ = builder_.MakeSchema();
    array_ = builder_.Finish();
  }
  Status MakeWith(const ArrowArray& array) {
    return BatchView::Make(*schema_.get(), array).status();
  }
  RecordBatchBuilder builder_;
  OwnedSchema schema_;
  OwnedArray array_;
};

TEST_F(BatchViewRejects, NonStructSchema) {
  ArrowSchema list{};
  list.format = "+l";
  list.release = &NoopSchemaRelease;
  EXPECT_EQ(BatchView::Make(list, *array_.get()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchViewRejects, ReleasedArrayOrSchema) {
  Tampered t(*array_.get());
  t.parent.release = nullptr;
  EXPECT_EQ(MakeWith(t.parent).code(), StatusCode::kInvalidArgument);
  ArrowSchema released = *schema_.get();
  released.release = nullptr;
  EXPECT_EQ(BatchView::Make(released, *array_.get()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchViewRejects, ChildCountMismatch) {
  Tampered t(*array_.get());
  t.parent.n_children = 1;
  EXPECT_EQ(MakeWith(t.parent).code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchViewRejects, WrongBufferCount) {
  Tampered t(*array_.get());
  t.kids[1].n_buffers = 2;
  EXPECT_EQ(MakeWith(t.parent).code(), StatusCode::kInvalidArgument);
  Tampered u(*array_.get());
  u.parent.n_buffers = 0;
  EXPECT_EQ(MakeWith(u.parent).code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchViewRejects, ChildShorterThanStruct) {
  Tampered t(*array_.get());
  t.kids[0].length = 4;
  EXPECT_EQ(MakeWith(t.parent).code(), StatusCode::kInvalidArgument);
  Tampered u(*array_.get());
  u.kids[0].offset = -1;
  EXPECT_EQ(MakeWith(u.parent).code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchViewRejects, NullsWithoutBitmap) {
  Tampered t(*array_.get());
  t.kids[0].null_count = 2;  // buffers[0] is NULL: no nulls were appended
  EXPECT_EQ(MakeWith(t.parent).code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchViewRejects, MissingValueBuffer) {
  Tampered t(*array_.get());
  const void* buffers[2] = {nullptr, nullptr};
  t.kids[0].buffers = buffers;
  EXPECT_EQ(MakeWith(t.parent).code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchViewRejects, UnsupportedChildFormat) {
  ArrowSchema child{};
  child.format = "d:38,10";
  child.name = "amount";
  child.release = &NoopSchemaRelease;
  ArrowSchema* children[1] = {&child};
  ArrowSchema parent{};
  parent.format = "+s";
  parent.n_children = 1;
  parent.children = children;
  parent.release = &NoopSchemaRelease;
  const Status status = BatchView::Make(parent, *array_.get()).status();
  EXPECT_EQ(status.code(), StatusCode::kTypeNotRepresentable);
  EXPECT_NE(status.message().find("d:38,10"), std::string::npos);
}

ArrowSchema SchemaWithFormat(const char* format, const char* name = "c") {
  ArrowSchema s{};
  s.format = format;
  s.name = name;
  s.flags = ARROW_FLAG_NULLABLE;
  s.release = &NoopSchemaRelease;
  return s;
}

TEST(ParseField, AcceptsEverySupportedFormat) {
  struct Case {
    const char* format;
    Type type;
    const char* timezone;
  };
  const Case cases[] = {
      {"n", Type::kNull, ""},
      {"b", Type::kBool, ""},
      {"i", Type::kInt32, ""},
      {"l", Type::kInt64, ""},
      {"g", Type::kFloat64, ""},
      {"u", Type::kUtf8, ""},
      {"z", Type::kBinary, ""},
      {"tdD", Type::kDate32, ""},
      {"ttu", Type::kTime64Micros, ""},
      {"tsu:", Type::kTimestampMicros, ""},
      {"tsu:UTC", Type::kTimestampMicros, "UTC"},
      {"tsu:Europe/Paris", Type::kTimestampMicros, "Europe/Paris"},
  };
  for (const Case& c : cases) {
    auto field = ParseField(SchemaWithFormat(c.format));
    ASSERT_TRUE(field.ok()) << c.format << ": " << field.status().ToString();
    EXPECT_EQ(field->type, c.type) << c.format;
    EXPECT_EQ(field->timezone, c.timezone) << c.format;
    EXPECT_EQ(field->name, "c");
    EXPECT_TRUE(field->nullable);
    EXPECT_EQ(FormatString(*field), c.format);  // round trip
  }
}

TEST(ParseField, ReadsNullabilityAndMissingName) {
  ArrowSchema s = SchemaWithFormat("l", nullptr);
  s.flags = 0;
  auto field = ParseField(s);
  ASSERT_TRUE(field.ok());
  EXPECT_FALSE(field->nullable);
  EXPECT_EQ(field->name, "");
}

TEST(ParseField, RejectsUnknownFormatsNamingThem) {
  for (const char* format : {"tss:", "tsm:UTC", "tsn:", "tdm", "ttm", "tts", "ttn", "e", "f",
                             "c",    "C",       "s",    "S",   "I",   "L",   "U",   "Z", "d:10,2",
                             "w:16", "+l",      "+s",   "tDs", "",    "uu",  "tsu"}) {
    const Status status = ParseField(SchemaWithFormat(format)).status();
    EXPECT_EQ(status.code(), StatusCode::kTypeNotRepresentable) << "'" << format << "'";
    EXPECT_NE(status.message().find("'" + std::string(format) + "'"), std::string::npos)
        << status.message();
  }
}

TEST(ParseField, RejectsDictionariesChildrenAndReleasedSchemas) {
  ArrowSchema values = SchemaWithFormat("u");
  ArrowSchema dict = SchemaWithFormat("i");
  dict.dictionary = &values;
  EXPECT_EQ(ParseField(dict).status().code(), StatusCode::kTypeNotRepresentable);

  ArrowSchema with_child = SchemaWithFormat("i");
  ArrowSchema* kids[1] = {&values};
  with_child.n_children = 1;
  with_child.children = kids;
  EXPECT_EQ(ParseField(with_child).status().code(), StatusCode::kTypeNotRepresentable);

  ArrowSchema released = SchemaWithFormat("i");
  released.release = nullptr;
  EXPECT_EQ(ParseField(released).status().code(), StatusCode::kInvalidArgument);
  ArrowSchema no_format = SchemaWithFormat(nullptr);
  EXPECT_EQ(ParseField(no_format).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace airlock::arrow
