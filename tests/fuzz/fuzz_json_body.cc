// JSON request bodies and the values that cross the kernel/plugin boundary as
// JSON: the body is parsed the way the v1 API parses request bodies
// (ParseStrictJson: no exceptions, no repeated keys), then read as every SDK value type built from
// outside JSON (AccessRequest from POST /v1/requests, the policy input and
// decision, principals, scopes, pull specs, catalogs).
//
// Checked beyond the sanitizers: what a reader accepts, it writes back in a
// form it accepts again, unchanged (ToJson . FromJson is a fixed point).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "airlock/cpp/values.hpp"
#include "kernel/common/strict_json.h"

namespace {

using airlock::Json;

template <typename T>
void RoundTrip(const Json& document, const char* what) {
  auto first = T::FromJson(document);
  if (!first.ok()) return;
  const Json written = first->ToJson();
  auto second = T::FromJson(written);
  if (!second.ok()) {
    std::fprintf(stderr, "%s: its own output is refused: %s\n", what,
                 second.status().message().c_str());
    std::abort();
  }
  if (second->ToJson() != written) {
    std::fprintf(stderr, "%s: output changes on a second round trip\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  auto parsed = airlock::ParseStrictJson(body, "request body");
  if (!parsed.ok()) return 0;
  const Json& document = *parsed;
  RoundTrip<airlock::AccessRequest>(document, "AccessRequest");
  RoundTrip<airlock::PolicyInput>(document, "PolicyInput");
  RoundTrip<airlock::Decision>(document, "Decision");
  RoundTrip<airlock::Principal>(document, "Principal");
  RoundTrip<airlock::DatasetScope>(document, "DatasetScope");
  RoundTrip<airlock::DatasetInfo>(document, "DatasetInfo");
  RoundTrip<airlock::PullSpec>(document, "PullSpec");
  RoundTrip<airlock::Catalog>(document, "Catalog");
  // What the v1 API answers with: every accepted value serializes (invalid
  // UTF-8 is replaced, never thrown).
  (void)document.dump(-1, ' ', false, Json::error_handler_t::replace);
  return 0;
}
