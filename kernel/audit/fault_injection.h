// Crash points for tests: kill the kernel right after a chosen audit record
// has become durable.
//
// Compiled in only with the CMake option AIRLOCK_FAULT_INJECTION (ON in the
// asan preset that tests run, OFF by default and in the release preset). A
// kernel built with it honours
//
//   AIRLOCK_FAULT_KILL_AFTER_AUDIT=<event>[:<n>]
//
// and sends itself SIGKILL right after the n-th (default: first) record whose
// "event" is <event> is durable: written, fdatasync'ed and covered by the
// anchor, before any caller waiting on that record's group is answered. It
// first writes one line to stderr naming the record:
//   fault injection: SIGKILL after audit seq=<seq> event=<event> request=<id>
// Records are counted from the start of the process. Without the option the
// hook is an empty inline function and the variable is ignored.
#pragma once

#include <nlohmann/json_fwd.hpp>

namespace airlock::audit_internal {

#ifdef AIRLOCK_FAULT_INJECTION
// Called by AuditLog for every record of a group once the group is durable.
void AfterDurableRecord(const nlohmann::json& record);
#else
inline void AfterDurableRecord(const nlohmann::json&) {}
#endif

}  // namespace airlock::audit_internal
