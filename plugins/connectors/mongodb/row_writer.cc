#include "row_writer.h"

#include <cstring>

namespace airlock::connectors::mongodb {
namespace {

std::vector<arrow::Field> OutputFields(const scope::ScopePlan& plan) {
  return plan.output_fields();
}

}  // namespace

RowWriter::RowWriter(const std::vector<SourceColumn>& columns, const scope::ScopePlan& plan,
                     NestedMode mode, size_t reserve_rows)
    : mode_(mode), builder_(OutputFields(plan), reserve_rows) {
  for (const scope::OutputColumn& out : plan.outputs()) {
    const SourceColumn& source = columns[out.source];
    by_name_.emplace(source.name, static_cast<int>(outputs_.size()));
    if (mode_ == NestedMode::kFlatten) {
      for (size_t dot = source.name.find('.'); dot != std::string::npos;
           dot = source.name.find('.', dot + 1)) {
        prefixes_.emplace(source.name.substr(0, dot), 0);
      }
    }
    outputs_.push_back({source.name, source.kind, out.field.type, out.mask});
  }
  filled_.assign(outputs_.size(), 0);
}

int RowWriter::Lookup(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

Status RowWriter::Append(const bson_t* document) {
  std::fill(filled_.begin(), filled_.end(), 0);
  path_.clear();
  AIRLOCK_RETURN_IF_ERROR(Walk(document, &path_, true));
  for (size_t c = 0; c < outputs_.size(); ++c) {
    if (!filled_[c]) builder_.AppendNull(c);
  }
  ++rows_;
  return Status::Ok();
}

Status RowWriter::Walk(const bson_t* document, std::string* prefix, bool top) {
  bson_iter_t it;
  if (!bson_iter_init(&it, document)) return Status::Internal("the server sent malformed BSON");
  size_t position = 0;
  while (bson_iter_next(&it)) {
    const std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    int column = -1;
    if (top) {
      if (position < hint_.size() && hint_[position] >= 0 &&
          outputs_[static_cast<size_t>(hint_[position])].name == key) {
        column = hint_[position];
      } else {
        column = Lookup(key);
        if (position >= hint_.size()) hint_.resize(position + 1, -1);
        hint_[position] = column;
      }
      ++position;
    } else {
      const size_t mark = prefix->size();
      prefix->append(key);
      column = Lookup(*prefix);
      prefix->resize(mark);
    }
    if (column >= 0) {
      AIRLOCK_RETURN_IF_ERROR(Cell(static_cast<size_t>(column), &it));
      continue;
    }
    if (mode_ == NestedMode::kFlatten && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      const size_t mark = prefix->size();
      prefix->append(key);
      if (prefixes_.find(*prefix) != prefixes_.end()) {
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_iter_document(&it, &len, &data);
        bson_t sub;
        if (!bson_init_static(&sub, data, len)) return Status::Internal("malformed BSON");
        prefix->push_back('.');
        Status status = Walk(&sub, prefix, false);
        prefix->resize(mark);
        AIRLOCK_RETURN_IF_ERROR(status);
      } else {
        prefix->resize(mark);
      }
    }
  }
  return Status::Ok();
}

Status RowWriter::Cell(size_t c, const bson_iter_t* it) {
  if (filled_[c]) return Status::Ok();  // a repeated field name: the first one counts
  filled_[c] = 1;
  const Output& out = outputs_[c];
  const bson_type_t type = bson_iter_type(it);
  if (type == BSON_TYPE_NULL || type == BSON_TYPE_UNDEFINED) {
    builder_.AppendNull(c);
    return Status::Ok();
  }
  scope::Value value;
  if (out.mask == scope::MaskFunction::kRedact) {
    builder_.AppendString(c, scope::kRedacted);
    bytes_ += scope::kRedacted.size() + 4;
    return Status::Ok();
  }
  if (out.mask == scope::MaskFunction::kLast4 && type == BSON_TYPE_UTF8) {
    uint32_t len = 0;
    const char* s = bson_iter_utf8(it, &len);
    scope::MaskLast4(std::string_view(s, len), &masked_);
    builder_.AppendString(c, masked_);
    bytes_ += masked_.size() + 4;
    return Status::Ok();
  }
  if (!ToValue(out.kind, it, &scratch_, &value)) {
    return Status::TypeNotRepresentable("column '" + out.name + "' (" + KindName(out.kind) +
                                        ") received a BSON " + BsonTypeName(type) +
                                        " value it cannot represent");
  }
  if (out.mask) {
    masker_.Mask(*out.mask, value, &masked_);
    if (!scratch_.empty()) OPENSSL_cleanse(scratch_.data(), scratch_.size());
    builder_.AppendString(c, masked_);
    bytes_ += masked_.size() + 4;
    return Status::Ok();
  }
  switch (out.type) {
    case arrow::Type::kInt32:
      builder_.AppendInt32(c, static_cast<int32_t>(value.i));
      bytes_ += 4;
      break;
    case arrow::Type::kInt64:
      builder_.AppendInt64(c, value.i);
      bytes_ += 8;
      break;
    case arrow::Type::kFloat64:
      builder_.AppendDouble(c, value.d);
      bytes_ += 8;
      break;
    case arrow::Type::kBool:
      builder_.AppendBool(c, value.b);
      bytes_ += 1;
      break;
    case arrow::Type::kTimestampMicros:
      builder_.AppendTimestamp(c, value.i);
      bytes_ += 8;
      break;
    default:
      if (!builder_.AppendString(c, value.s)) {
        return Status::ResourceExhausted("a batch column exceeds the 2 GiB Arrow limit");
      }
      bytes_ += value.s.size() + 4;
      break;
  }
  return Status::Ok();
}

arrow::OwnedArray RowWriter::Finish() {
  rows_ = 0;
  bytes_ = 0;
  return builder_.Finish();
}

}  // namespace airlock::connectors::mongodb
