// Configuration of the in-process isolator. It has no settings: the empty
// object is the only valid configuration, and unknown keys are refused so a
// typo (say, a "limits" meant for the process isolator) is not silently
// ignored.
#pragma once

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::isolators::inprocess {

struct InprocessConfig {};

// Ok for `{}`; InvalidArgument naming the first unknown key otherwise.
Result<InprocessConfig> ParseConfig(const Json& config);

}  // namespace airlock::isolators::inprocess
