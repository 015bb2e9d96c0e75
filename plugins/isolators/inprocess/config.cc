#include "config.h"

#include "airlock/cpp/config_read.hpp"

namespace airlock::isolators::inprocess {

Result<InprocessConfig> ParseConfig(const Json& config) {
  if (!config.is_object()) {
    return Status::InvalidArgument("inprocess isolator configuration must be a JSON object");
  }
  // No key is known, so every key is refused.
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(
      config, {}, "inprocess isolator configuration (it takes no settings)"));
  return InprocessConfig{};
}

}  // namespace airlock::isolators::inprocess
