#include "kernel/core/peer_result.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "airlock/cpp/arrow.hpp"

namespace airlock {
namespace {

// Keeps what it is fed, as rows of text.
class Collector final : public sdk::BatchConsumer {
 public:
  Status OnSchema(arrow::OwnedSchema schema) override {
    ++schemas;
    names.clear();
    for (int64_t i = 0; i < schema.get()->n_children; ++i) {
      names.emplace_back(schema.get()->children[i]->name);
    }
    return Status::Ok();
  }
  Status OnBatch(arrow::OwnedArray batch) override {
    auto view = arrow::BatchView::Make(fields, *batch.get());
    if (!view.ok()) return view.status();
    rows += view->num_rows();
    return Status::Ok();
  }
  bool IsCancelled() override { return cancel; }

  std::vector<arrow::Field> fields;
  std::vector<std::string> names;
  int schemas = 0;
  size_t rows = 0;
  bool cancel = false;
};

std::vector<arrow::Field> Fields() {
  return {{"id", arrow::Type::kInt64, "", false}, {"name", arrow::Type::kUtf8, "", true}};
}

arrow::OwnedArray Batch(int64_t first, int64_t count) {
  arrow::RecordBatchBuilder builder(Fields(), static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    builder.AppendInt64(0, first + i);
    if (i % 3 == 0) {
      builder.AppendNull(1);
    } else {
      builder.AppendString(1, "row " + std::to_string(first + i));
    }
  }
  return builder.Finish();
}

std::string Encoded(int batches, size_t max_bytes = size_t{1} << 20) {
  PeerResultEncoder encoder(max_bytes);
  EXPECT_TRUE(encoder.OnSchema(arrow::MakeStructSchema(Fields())).ok());
  for (int b = 0; b < batches; ++b) EXPECT_TRUE(encoder.OnBatch(Batch(b * 10, 10)).ok());
  return encoder.Take();
}

TEST(PeerResult, RoundTripsASchemaAndItsBatches) {
  Collector out;
  out.fields = Fields();
  ASSERT_TRUE(DecodePeerResult(Encoded(3), out).ok());
  EXPECT_EQ(out.schemas, 1);
  EXPECT_EQ(out.names, (std::vector<std::string>{"id", "name"}));
  EXPECT_EQ(out.rows, 30u);
}

TEST(PeerResult, AnEmptyBodyIsAResultWithoutColumns) {
  Collector out;
  ASSERT_TRUE(DecodePeerResult("", out).ok());
  EXPECT_EQ(out.schemas, 0);
}

TEST(PeerResult, RefusesEveryTruncationAndAlteredLength) {
  const std::string body = Encoded(2);
  for (size_t cut = 1; cut < body.size(); ++cut) {
    Collector out;
    out.fields = Fields();
    const Status status = DecodePeerResult(std::string_view(body).substr(0, cut), out);
    // A cut that falls exactly between frames is a shorter, valid result.
    if (status.ok()) continue;
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << cut;
  }
  std::string lying = body;
  lying[0] = static_cast<char>(0xFF);  // the schema frame claims more bytes than follow
  Collector out;
  EXPECT_EQ(DecodePeerResult(lying, out).code(), StatusCode::kInvalidArgument);
}

TEST(PeerResult, RefusesABatchThatDoesNotMatchItsSchema) {
  const std::string body = Encoded(1);
  // The second frame decoded as a schema: not one.
  const size_t schema_frame =
      4 + static_cast<unsigned char>(body[0]) + (static_cast<unsigned char>(body[1]) << 8);
  Collector out;
  EXPECT_EQ(DecodePeerResult(std::string_view(body).substr(schema_frame), out).code(),
            StatusCode::kInvalidArgument);
}

TEST(PeerResult, TheEncoderStopsAtItsBound) {
  PeerResultEncoder encoder(256);
  ASSERT_TRUE(encoder.OnSchema(arrow::MakeStructSchema(Fields())).ok());
  Status status;
  for (int b = 0; b < 10 && status.ok(); ++b) status = encoder.OnBatch(Batch(b * 10, 10));
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
}

TEST(PeerResult, StopsWhenTheReaderCancels) {
  Collector out;
  out.fields = Fields();
  out.cancel = true;
  EXPECT_EQ(DecodePeerResult(Encoded(2), out).code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace airlock
