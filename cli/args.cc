#include "cli/args.h"

#include <charconv>

namespace airlock::cli {

std::string Args::Value(const std::string& flag, const std::string& fallback) const {
  auto it = values.find(flag);
  return it == values.end() || it->second.empty() ? fallback : it->second.back();
}

const std::vector<std::string>& Args::All(const std::string& flag) const {
  static const std::vector<std::string> kNone;
  auto it = values.find(flag);
  return it == values.end() ? kNone : it->second;
}

Result<Args> ParseArgs(const std::vector<std::string>& words, const FlagSpec& spec) {
  Args args;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word == "--") {
      args.passthrough.assign(words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end());
      break;
    }
    if (word.size() < 2 || word[0] != '-' || word == "-") {
      args.positional.push_back(word);
      continue;
    }
    const size_t equals = word.find('=');
    const std::string flag = word.substr(0, equals);
    if (spec.boolean.count(flag)) {
      if (equals != std::string::npos) return Status::InvalidArgument(flag + " takes no value");
      args.switches.insert(flag);
    } else if (spec.with_value.count(flag)) {
      if (equals != std::string::npos) {
        args.values[flag].push_back(word.substr(equals + 1));
      } else if (i + 1 < words.size()) {
        args.values[flag].push_back(words[++i]);
      } else {
        return Status::InvalidArgument(flag + " needs a value");
      }
    } else {
      return Status::InvalidArgument("unknown option " + flag);
    }
  }
  return args;
}

Result<int64_t> ParseDuration(const std::string& text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  int64_t unit = 0;
  if (ec == std::errc() && value > 0) {
    const std::string_view suffix(ptr, static_cast<size_t>(end - ptr));
    if (suffix.empty() || suffix == "s") unit = 1;
    if (suffix == "m" || suffix == "min") unit = 60;
    if (suffix == "h") unit = 3600;
    if (suffix == "d") unit = 86400;
  }
  if (unit == 0 || value > (int64_t{1} << 40) / unit) {
    return Status::InvalidArgument("not a duration: '" + text + "' (e.g. 90s, 15m, 2h, 1d)");
  }
  return value * unit;
}

}  // namespace airlock::cli
