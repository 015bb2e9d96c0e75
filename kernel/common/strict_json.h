// JSON text from outside the kernel (API bodies, configuration files), parsed
// strictly: an object that names the same key twice is refused instead of
// letting the last value win, so what a reviewer reads is what the kernel
// acts on.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock {

// Deepest nesting of arrays and objects accepted: far beyond any document
// the kernel reads, and shallow enough for every recursive consumer.
inline constexpr int kMaxStrictJsonDepth = 64;

// Parses `text` as one JSON document. Errors (InvalidArgument): not valid
// JSON ("<what> is not valid JSON"), an object with a repeated key
// ("<what> repeats the key 'name'"), or nesting deeper than
// kMaxStrictJsonDepth ("<what> nests deeper than 64 levels"). `what` names the document in
// messages, e.g. "request body". Never throws.
Result<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view what);

// The string `object[key]`, or "" when `object` is not an object, has no such
// member or holds something else there. Unlike json::value, never throws on
// a member of another type (outside JSON may hold anything).
std::string StringMember(const nlohmann::json& object, std::string_view key);

}  // namespace airlock
