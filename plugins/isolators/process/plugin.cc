// Registers the Linux process-sandbox isolator under the name "process".
#include "airlock/cpp/plugin.hpp"
#include "process.h"

AIRLOCK_ISOLATOR_PLUGIN(
    airlock::isolators::process::ProcessIsolator, "process", "1.0.0",
    "Runs each enclave as an airlock-enclave process in Linux namespaces with seccomp, "
    "no_new_privs, dropped capabilities, rlimits and cgroup limits",
    R"({"type":"object","additionalProperties":false,"properties":{
"min_isolation":{"type":"array","items":{"type":"string"}},
"enclave_executable":{"type":"string"},
"default_memory_bytes":{"type":"integer","minimum":67108864},
"cgroup_root":{"type":"string"},
"state_dir":{"type":"string"}}})")
