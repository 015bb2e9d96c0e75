#include "jsonl_reader.h"

#include <cstring>
#include <limits>

namespace airlock::connectors::files {

Result<bool> JsonlReader::NextLine(std::string_view* out) {
  for (;;) {
    if (at_start_) {
      if (file_->size() < 3 && !file_->eof()) {
        AIRLOCK_ASSIGN_OR_RETURN(size_t n, file_->Fill());
        if (n != 0) continue;
      }
      if (file_->size() >= 3 && std::memcmp(file_->data(), "\xEF\xBB\xBF", 3) == 0) {
        file_->Consume(3);
      }
      at_start_ = false;
    }
    const char* data = file_->data();
    const void* newline = std::memchr(data, '\n', file_->size());
    if (newline == nullptr && !file_->eof()) {
      auto filled = file_->Fill();
      if (!filled.ok()) return filled.status().WithContext("line " + std::to_string(line_ + 1));
      continue;
    }
    if (newline == nullptr && file_->size() == 0) return false;
    const size_t length = newline != nullptr
                              ? static_cast<size_t>(static_cast<const char*>(newline) - data)
                              : file_->size();
    std::string_view line(data, length);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_;
    // Consume moves no bytes, so `line` stays valid until the next Fill.
    file_->Consume(newline != nullptr ? length + 1 : length);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    *out = line;
    return true;
  }
}

Status JsonlReader::Rewind() {
  AIRLOCK_RETURN_IF_ERROR(file_->Rewind());
  line_ = 0;
  at_start_ = true;
  return Status::Ok();
}

std::optional<scope::Value> JsonCell(const Json& value, arrow::Type type, std::string* scratch) {
  using scope::Value;
  if (value.is_null()) return Value::Null();
  switch (type) {
    case arrow::Type::kBool:
      if (value.is_boolean()) return Value::Bool(value.get<bool>());
      if (value.is_string()) {
        if (auto b = scope::ParseBool(value.get_ref<const std::string&>())) return Value::Bool(*b);
      }
      return std::nullopt;
    case arrow::Type::kInt64:
      if (value.is_number_unsigned()) {
        if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return std::nullopt;
        }
        return Value::Int64(value.get<int64_t>());
      }
      if (value.is_number_integer()) return Value::Int64(value.get<int64_t>());
      if (value.is_string()) {
        if (auto i = scope::ParseInt64(value.get_ref<const std::string&>())) {
          return Value::Int64(*i);
        }
      }
      return std::nullopt;
    case arrow::Type::kFloat64:
      if (value.is_number()) return Value::Float64(value.get<double>());
      if (value.is_string()) {
        if (auto d = scope::ParseFloat64(value.get_ref<const std::string&>())) {
          return Value::Float64(*d);
        }
      }
      return std::nullopt;
    case arrow::Type::kDate32:
      if (value.is_string()) {
        if (auto d = scope::ParseDate32(value.get_ref<const std::string&>())) {
          return Value::Date32(*d);
        }
      }
      return std::nullopt;
    case arrow::Type::kTimestampMicros:
      if (value.is_string()) {
        if (auto t = scope::ParseTimestampMicros(value.get_ref<const std::string&>())) {
          return Value::Timestamp(*t);
        }
      }
      return std::nullopt;
    default:
      if (value.is_string()) return Value::String(value.get_ref<const std::string&>());
      *scratch = value.dump();  // numbers, bools, nested objects and arrays as JSON text
      return Value::String(*scratch);
  }
}

}  // namespace airlock::connectors::files
