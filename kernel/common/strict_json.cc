#include "kernel/common/strict_json.h"

#include <string>
#include <unordered_set>
#include <vector>

namespace airlock {

using nlohmann::json;

Result<json> ParseStrictJson(std::string_view text, std::string_view what) {
  // One key set per open object, innermost last: keys always belong to the
  // innermost open object, whatever arrays lie between.
  std::vector<std::unordered_set<std::string>> open_objects;
  std::string repeated;
  bool too_deep = false;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxStrictJsonDepth) {
      too_deep = true;
      return false;  // dropped: nothing deeper is kept
    }
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && repeated.empty()) {
          repeated = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json document = json::parse(text, check, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return Status::InvalidArgument(std::string(what) + " is not valid JSON");
  }
  if (too_deep) {
    return Status::InvalidArgument(std::string(what) + " nests deeper than " +
                                   std::to_string(kMaxStrictJsonDepth) + " levels");
  }
  if (!repeated.empty()) {
    // The key is the caller's own text; bounded so the message stays short.
    if (repeated.size() > 64) repeated = repeated.substr(0, 64) + "...";
    return Status::InvalidArgument(std::string(what) + " repeats the key '" + repeated + "'");
  }
  return document;
}

std::string StringMember(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return std::string();
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace airlock
