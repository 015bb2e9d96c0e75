#include "kernel/core/peer_result.h"

#include <cstring>

#include "kernel/enclave/batch_codec.h"

namespace airlock {

namespace {

constexpr size_t kLengthBytes = 4;

void PutLength(uint32_t value, std::string* out) {
  for (size_t i = 0; i < kLengthBytes; ++i) {
    out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }
}

uint32_t GetLength(std::string_view bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  return value;
}

}  // namespace

Status PeerResultEncoder::AppendFrame(std::string_view payload) {
  if (payload.size() > UINT32_MAX || out_.size() + kLengthBytes + payload.size() > max_bytes_) {
    return Status::ResourceExhausted("the result is larger than the " + std::to_string(max_bytes_) +
                                     " bytes one replica forwards to another");
  }
  PutLength(static_cast<uint32_t>(payload.size()), &out_);
  out_.append(payload);
  return Status::Ok();
}

Status PeerResultEncoder::OnSchema(arrow::OwnedSchema schema) {
  if (has_schema_) return Status::Internal("a second result schema");
  const ArrowSchema* root = schema.get();
  if (root == nullptr || root->n_children < 0 ||
      (root->n_children > 0 && root->children == nullptr)) {
    return Status::Internal("malformed result schema");
  }
  fields_.clear();
  for (int64_t i = 0; i < root->n_children; ++i) {
    AIRLOCK_ASSIGN_OR_RETURN(arrow::Field field, arrow::ParseField(*root->children[i]));
    fields_.push_back(std::move(field));
  }
  has_schema_ = true;
  return AppendFrame(EncodeSchema(fields_));
}

Status PeerResultEncoder::OnBatch(arrow::OwnedArray batch) {
  if (!has_schema_) return Status::Internal("a result batch before its schema");
  AIRLOCK_ASSIGN_OR_RETURN(arrow::BatchView view, arrow::BatchView::Make(fields_, *batch.get()));
  std::string encoded;
  EncodeBatch(view, &encoded);
  return AppendFrame(encoded);
}

Status DecodePeerResult(std::string_view body, sdk::BatchConsumer& consumer) {
  std::vector<arrow::Field> fields;
  bool has_schema = false;
  size_t at = 0;
  while (at < body.size()) {
    if (body.size() - at < kLengthBytes) {
      return Status::InvalidArgument("forwarded result: truncated frame length");
    }
    const size_t length = GetLength(body.substr(at, kLengthBytes));
    at += kLengthBytes;
    if (body.size() - at < length) {
      return Status::InvalidArgument("forwarded result: truncated frame");
    }
    const std::string_view payload = body.substr(at, length);
    at += length;
    if (consumer.IsCancelled()) return Status::Cancelled("the result's reader stopped");
    if (!has_schema) {
      auto decoded = DecodeSchema(payload);
      if (!decoded.ok()) {
        return Status::InvalidArgument("forwarded result: " + decoded.status().message());
      }
      fields = std::move(decoded).value();
      has_schema = true;
      AIRLOCK_RETURN_IF_ERROR(consumer.OnSchema(arrow::MakeStructSchema(fields)));
      continue;
    }
    auto decoded = DecodeBatch(fields, std::string(payload));
    if (!decoded.ok()) {
      return Status::InvalidArgument("forwarded result: " + decoded.status().message());
    }
    AIRLOCK_RETURN_IF_ERROR(consumer.OnBatch(std::move(decoded).value()));
  }
  return Status::Ok();
}

}  // namespace airlock
