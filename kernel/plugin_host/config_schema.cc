#include "kernel/plugin_host/config_schema.h"

#include <cmath>
#include <regex>
#include <set>

namespace airlock::plugin_host {
namespace {

using json = nlohmann::json;

// How deep schemas and values may nest: configuration is shallow, and a
// bound keeps a hostile schema from exhausting the stack.
constexpr int kMaxDepth = 64;

const std::set<std::string>& Annotations() {
  static const std::set<std::string> kAnnotations = {
      "$schema",  "$id",    "$comment",   "title",    "description", "default",
      "examples", "format", "deprecated", "readOnly", "writeOnly"};
  return kAnnotations;
}

const std::set<std::string>& Assertions() {
  static const std::set<std::string> kAssertions = {
      "type",    "enum",     "const",    "properties", "required",  "additionalProperties",
      "items",   "minItems", "maxItems", "minLength",  "maxLength", "pattern",
      "minimum", "maximum",  "oneOf",    "anyOf",      "allOf"};
  return kAssertions;
}

std::string Quoted(const std::string& text) {
  return "'" + text + "'";
}

Status Unsupported(const std::string& where, const std::string& why) {
  return Status::NotImplemented("the configuration schema " + why + " at " +
                                (where.empty() ? std::string("its root") : where));
}

Status Support(const json& schema, const std::string& where, int depth) {
  if (depth > kMaxDepth) return Unsupported(where, "nests too deep");
  if (schema.is_boolean()) return Status::Ok();
  if (!schema.is_object()) return Unsupported(where, "has a subschema that is not an object");
  for (const auto& [key, value] : schema.items()) {
    if (Annotations().count(key)) continue;
    if (!Assertions().count(key)) return Unsupported(where, "uses the keyword " + Quoted(key));
    if (key == "properties") {
      if (!value.is_object()) return Unsupported(where, "has properties that are not an object");
      for (const auto& [name, sub] : value.items()) {
        AIRLOCK_RETURN_IF_ERROR(Support(sub, where + "/properties/" + name, depth + 1));
      }
    } else if (key == "additionalProperties" || key == "items") {
      AIRLOCK_RETURN_IF_ERROR(Support(value, where + "/" + key, depth + 1));
    } else if (key == "oneOf" || key == "anyOf" || key == "allOf") {
      if (!value.is_array() || value.empty()) {
        return Unsupported(where, "has a " + key + " that is not a list of schemas");
      }
      for (size_t i = 0; i < value.size(); ++i) {
        AIRLOCK_RETURN_IF_ERROR(
            Support(value[i], where + "/" + key + "/" + std::to_string(i), depth + 1));
      }
    } else if (key == "pattern") {
      if (!value.is_string()) return Unsupported(where, "has a pattern that is not a string");
      try {
        std::regex compiled(value.get<std::string>(), std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        return Unsupported(where, "has a pattern this checker cannot compile");
      }
    } else if (key == "required" && !value.is_array()) {
      return Unsupported(where, "has a required that is not a list");
    } else if (key == "enum" && !value.is_array()) {
      return Unsupported(where, "has an enum that is not a list");
    } else if ((key == "minimum" || key == "maximum") && !value.is_number()) {
      return Unsupported(where, "has a " + key + " that is not a number");
    } else if ((key == "minItems" || key == "maxItems" || key == "minLength" ||
                key == "maxLength") &&
               !value.is_number_unsigned()) {
      return Unsupported(where, "has a " + key + " that is not a count");
    } else if (key == "type" && !value.is_string() && !value.is_array()) {
      return Unsupported(where, "has a type that is neither a name nor a list");
    }
  }
  return Status::Ok();
}

// The JSON Schema type names `value` satisfies (an integer is a number too).
bool IsType(const json& value, const std::string& type) {
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  if (type == "null") return value.is_null();
  if (type == "number") return value.is_number();
  if (type == "integer") {
    if (value.is_number_integer()) return true;
    if (!value.is_number_float()) return false;
    const double d = value.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }
  return false;
}

// Code points, as JSON Schema counts a string's length.
size_t Length(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Shown(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

Status Fail(const std::string& path, const std::string& what) {
  return Status::InvalidArgument(path + ": " + what);
}

Status Check(const json& schema, const json& value, const std::string& path, int depth) {
  if (depth > kMaxDepth) return Fail(path, "nests too deep");
  if (schema.is_boolean()) {
    return schema.get<bool>() ? Status::Ok() : Fail(path, "is not allowed here");
  }
  if (auto type = schema.find("type"); type != schema.end()) {
    const json types = type->is_array() ? *type : json::array({*type});
    bool any = false;
    std::string names;
    for (const json& t : types) {
      if (!t.is_string()) continue;
      any = any || IsType(value, t.get<std::string>());
      names += (names.empty() ? "" : " or ") + t.get<std::string>();
    }
    if (!any) return Fail(path, "must be " + (names.empty() ? "of another type" : names));
  }
  if (auto choices = schema.find("enum"); choices != schema.end()) {
    bool found = false;
    for (const json& choice : *choices) found = found || choice == value;
    if (!found) return Fail(path, "must be one of " + Shown(*choices));
  }
  if (auto constant = schema.find("const"); constant != schema.end() && *constant != value) {
    return Fail(path, "must be " + Shown(*constant));
  }
  if (value.is_object()) {
    const json properties = schema.value("properties", json::object());
    if (auto required = schema.find("required"); required != schema.end()) {
      for (const json& name : *required) {
        if (name.is_string() && !value.contains(name.get<std::string>())) {
          return Fail(path + "." + name.get<std::string>(), "is required");
        }
      }
    }
    const auto additional = schema.find("additionalProperties");
    for (const auto& [name, member] : value.items()) {
      const std::string at = path + "." + name;
      if (auto sub = properties.find(name); sub != properties.end()) {
        AIRLOCK_RETURN_IF_ERROR(Check(*sub, member, at, depth + 1));
      } else if (additional != schema.end()) {
        if (additional->is_boolean() && !additional->get<bool>()) {
          return Fail(at, "is not a setting this plugin knows");
        }
        AIRLOCK_RETURN_IF_ERROR(Check(*additional, member, at, depth + 1));
      }
    }
  }
  if (value.is_array()) {
    const size_t n = value.size();
    if (schema.contains("minItems") && n < schema["minItems"].get<size_t>()) {
      return Fail(path, "must hold at least " + schema["minItems"].dump() + " item(s)");
    }
    if (schema.contains("maxItems") && n > schema["maxItems"].get<size_t>()) {
      return Fail(path, "must hold at most " + schema["maxItems"].dump() + " item(s)");
    }
    if (auto items = schema.find("items"); items != schema.end()) {
      for (size_t i = 0; i < n; ++i) {
        AIRLOCK_RETURN_IF_ERROR(
            Check(*items, value[i], path + "[" + std::to_string(i) + "]", depth + 1));
      }
    }
  }
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (schema.contains("minLength") && Length(text) < schema["minLength"].get<size_t>()) {
      return Fail(path, schema["minLength"].get<size_t>() == 1
                            ? std::string("must not be empty")
                            : "must be at least " + schema["minLength"].dump() + " characters");
    }
    if (schema.contains("maxLength") && Length(text) > schema["maxLength"].get<size_t>()) {
      return Fail(path, "must be at most " + schema["maxLength"].dump() + " characters");
    }
    if (auto pattern = schema.find("pattern"); pattern != schema.end()) {
      const std::regex compiled(pattern->get<std::string>(), std::regex::ECMAScript);
      if (!std::regex_search(text, compiled)) {
        return Fail(path, "must match " + pattern->get<std::string>());
      }
    }
  }
  if (value.is_number()) {
    const double number = value.get<double>();
    if (schema.contains("minimum") && number < schema["minimum"].get<double>()) {
      return Fail(path, "must be at least " + schema["minimum"].dump());
    }
    if (schema.contains("maximum") && number > schema["maximum"].get<double>()) {
      return Fail(path, "must be at most " + schema["maximum"].dump());
    }
  }
  if (auto all = schema.find("allOf"); all != schema.end()) {
    for (const json& sub : *all) AIRLOCK_RETURN_IF_ERROR(Check(sub, value, path, depth + 1));
  }
  if (auto any = schema.find("anyOf"); any != schema.end()) {
    Status first;
    bool matched = false;
    for (const json& sub : *any) {
      Status s = Check(sub, value, path, depth + 1);
      if (s.ok()) {
        matched = true;
        break;
      }
      if (first.ok()) first = s;
    }
    if (!matched) return first;
  }
  if (auto one = schema.find("oneOf"); one != schema.end()) {
    size_t matched = 0;
    Status first;
    for (const json& sub : *one) {
      Status s = Check(sub, value, path, depth + 1);
      if (s.ok()) {
        ++matched;
      } else if (first.ok()) {
        first = s;
      }
    }
    if (matched == 0) return first;
    if (matched > 1) return Fail(path, "matches more than one of the forms it may take");
  }
  return Status::Ok();
}

}  // namespace

Status SchemaSupport(const json& schema) {
  return Support(schema, "", 0);
}

Status CheckAgainstSchema(const json& schema, const json& value, const std::string& where) {
  return Check(schema, value, where, 0);
}

}  // namespace airlock::plugin_host
