#include "config.h"

#include <string>

namespace airlock::isolators::inprocess {

Result<InprocessConfig> ParseConfig(const Json& config) {
  if (!config.is_object()) {
    return Status::InvalidArgument("inprocess isolator configuration must be a JSON object");
  }
  for (const auto& item : config.items()) {
    return Status::InvalidArgument("inprocess isolator configuration: unknown key '" + item.key() +
                                   "' (this isolator takes no settings)");
  }
  return InprocessConfig{};
}

}  // namespace airlock::isolators::inprocess
