// What a sealed enclave agrees to run (kernel/enclave/query_gate.h): the
// bytes are a query as any transport delivers it, free SQL or an
// `AGGREGATE {json}` call, admitted by a gate over two tables: "sales", a
// clean room (groups of at least 3 rows, count/sum over amount by region),
// and "plain", without the obligation.
//
// Checked beyond the sanitizers: nothing but an aggregate call is admitted
// while a clean room is present; every admitted call is one SELECT that
// ends its grouping with the minimum group size of the table it reads (3
// for the clean room), and names no column the clean room does not allow.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/enclave/query_gate.h"
#include "tests/kernel/enclave/clean_room_gate.h"

namespace {

using airlock::enclave::QueryGate;

[[noreturn]] void Fail(const char* what, std::string_view sql) {
  std::fprintf(stderr, "query gate: %s: %.*s\n", what, static_cast<int>(sql.size()), sql.data());
  std::abort();
}

const QueryGate& Gate() {
  static const QueryGate gate = airlock::enclave::SalesCleanRoomGate(3);
  return gate;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto admitted = Gate().Admit(text);
  if (!admitted.ok()) return 0;
  const std::string& sql = *admitted;
  if (!airlock::enclave::IsAggregateCall(text)) Fail("free SQL admitted past a clean room", sql);
  if (sql.rfind("SELECT ", 0) != 0) Fail("not a SELECT", sql);
  const bool clean_room = sql.find(" FROM \"sales\"") != std::string::npos;
  const std::string floor = clean_room ? " HAVING COUNT(*) >= 3" : " HAVING COUNT(*) >= 1";
  if (sql.find(floor) == std::string::npos) Fail("the minimum group size is missing", sql);
  if (clean_room && sql.find("\"id\"") != std::string::npos) Fail("a column outside the room", sql);
  return 0;
}
