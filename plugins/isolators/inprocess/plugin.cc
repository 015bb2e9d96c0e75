// Registers the in-process isolator under the name "inprocess".
#include "airlock/cpp/plugin.hpp"
#include "inprocess.h"

AIRLOCK_ISOLATOR_PLUGIN(
    airlock::isolators::inprocess::InprocessIsolator, "inprocess", "1.0.0",
    "DEVELOPMENT ONLY, NO ISOLATION: runs each enclave as a thread of the kernel process",
    R"({"type":"object","additionalProperties":false,"properties":{}})")
