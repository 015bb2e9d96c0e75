#include "messages.h"

#include <cctype>

#include "wire.h"

namespace airlock::tunnels::pgwire {
namespace {

constexpr size_t kMaxApplicationName = 63;

bool IsFalse(std::string_view value) {
  std::string lower(value);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "false" || lower == "off" || lower == "no" || lower == "0";
}

}  // namespace

std::optional<StartupParameters> DecodeStartupParameters(std::string_view pairs) {
  BodyReader reader(pairs);
  StartupParameters out;
  for (;;) {
    std::string_view name, value;
    if (!reader.CString(&name)) return std::nullopt;
    if (name.empty()) break;
    if (!reader.CString(&value)) return std::nullopt;
    if (name == "user") {
      out.user = std::string(value);
    } else if (name == "database") {
      out.database = std::string(value);
    } else if (name == "application_name") {
      out.application_name = std::string(value.substr(0, kMaxApplicationName));
    } else if (name == "replication") {
      if (!IsFalse(value)) {
        out.replication = true;
        return out;
      }
    } else if (name.starts_with("_pq_.")) {
      out.unrecognized.emplace_back(name);
    }
  }
  return out;
}

std::optional<SaslInitialResponse> DecodeSaslInitialResponse(std::string_view body) {
  BodyReader reader(body);
  SaslInitialResponse out;
  int32_t length = 0;
  if (!reader.CString(&out.mechanism) || !reader.Int32(&length) || length < 0 ||
      !reader.Bytes(static_cast<size_t>(length), &out.data)) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::string_view> DecodeQuery(std::string_view body) {
  BodyReader reader(body);
  std::string_view query;
  if (!reader.CString(&query) || !reader.done()) return std::nullopt;
  return query;
}

std::optional<ParseMessage> DecodeParse(std::string_view body) {
  BodyReader reader(body);
  ParseMessage out;
  int16_t declared = 0;
  if (!reader.CString(&out.name) || !reader.CString(&out.query) || !reader.Int16(&declared) ||
      declared < 0) {
    return std::nullopt;
  }
  // Each declared type takes four bytes: a count the body cannot hold is
  // refused before anything is allocated for it.
  if (reader.remaining() / 4 < static_cast<size_t>(declared)) return std::nullopt;
  out.parameter_types.resize(static_cast<size_t>(declared));
  for (auto& type : out.parameter_types) {
    int32_t raw = 0;
    if (!reader.Int32(&raw)) return std::nullopt;
    type = static_cast<uint32_t>(raw);
  }
  if (!reader.done()) return std::nullopt;
  return out;
}

std::optional<BindMessage> DecodeBind(std::string_view body) {
  BodyReader reader(body);
  BindMessage out;
  int16_t format_count = 0;
  if (!reader.CString(&out.portal) || !reader.CString(&out.statement) ||
      !reader.Int16(&format_count) || format_count < 0 ||
      reader.remaining() / 2 < static_cast<size_t>(format_count)) {
    return std::nullopt;
  }
  out.parameter_formats.resize(static_cast<size_t>(format_count));
  for (auto& f : out.parameter_formats) {
    if (!reader.Int16(&f)) return std::nullopt;
  }
  int16_t parameter_count = 0;
  if (!reader.Int16(&parameter_count) || parameter_count < 0 ||
      reader.remaining() / 4 < static_cast<size_t>(parameter_count)) {
    return std::nullopt;
  }
  out.values.resize(static_cast<size_t>(parameter_count));
  for (auto& value : out.values) {
    int32_t length = 0;
    if (!reader.Int32(&length)) return std::nullopt;
    if (length == -1) continue;
    std::string_view bytes;
    if (length < 0 || !reader.Bytes(static_cast<size_t>(length), &bytes)) return std::nullopt;
    value = bytes;
  }
  int16_t result_count = 0;
  if (!reader.Int16(&result_count) || result_count < 0 ||
      reader.remaining() / 2 < static_cast<size_t>(result_count)) {
    return std::nullopt;
  }
  out.result_formats.resize(static_cast<size_t>(result_count));
  for (auto& f : out.result_formats) {
    if (!reader.Int16(&f)) return std::nullopt;
  }
  if (!reader.done()) return std::nullopt;
  return out;
}

std::optional<TargetMessage> DecodeTarget(std::string_view body) {
  BodyReader reader(body);
  std::string_view kind;
  TargetMessage out;
  if (!reader.Bytes(1, &kind) || !reader.CString(&out.name) || !reader.done()) {
    return std::nullopt;
  }
  out.kind = kind[0];
  return out;
}

std::optional<ExecuteMessage> DecodeExecute(std::string_view body) {
  BodyReader reader(body);
  ExecuteMessage out;
  if (!reader.CString(&out.portal) || !reader.Int32(&out.max_rows) || !reader.done()) {
    return std::nullopt;
  }
  return out;
}

}  // namespace airlock::tunnels::pgwire
