// Policy files of the rules backend: the document is read as the plugin
// reads its configuration (json_read::Parse), validated and compiled
// (CompiledPolicy::Compile, zones from the system's zoneinfo), and a policy
// that compiles is evaluated for a few requests: a member of groups, another
// principal kind, tagged and untagged datasets, with and without a clock.
//
// Checked beyond the sanitizers: every decision serializes to a document the
// SDK reads back (the kernel receives it through the plugin ABI as JSON).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "airlock/cpp/values.hpp"
#include "plugins/policy/rules/rules.h"

namespace {

using airlock::Json;
using airlock::PolicyInput;

std::vector<PolicyInput> MakeInputs() {
  const Json analyst = {{"subject", "alice"}, {"kind", "human"}, {"groups", {"analysts", "eu"}}};
  const Json agent = {
      {"subject", "bot-7"}, {"kind", "agent"}, {"groups", Json::array()}, {"tenant", "acme"}};
  const Json datasets = Json::array(
      {{{"name", "customers"},
        {"tags", {"pii", "crm"}},
        {"columns", {{{"name", "id"}, {"type", "int64"}}, {{"name", "email"}, {"type", "utf8"}}}}},
       {{"name", "orders"}, {"tags", Json::array()}}});
  std::vector<PolicyInput> inputs;
  for (const Json& principal : {analyst, agent}) {
    for (int64_t now : {int64_t{0}, int64_t{1767225600}, int64_t{1780000000}}) {
      const Json input = {{"principal", principal},
                          {"request",
                           {{"datasets", {"customers", "orders"}},
                            {"window_seconds", 7200},
                            {"purpose", "quarterly report"}}},
                          {"datasets", datasets},
                          {"now", now}};
      inputs.push_back(PolicyInput::FromJson(input).value());
    }
  }
  return inputs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<PolicyInput> inputs = MakeInputs();
  auto document = airlock::json_read::Parse(
      std::string_view(reinterpret_cast<const char*>(data), size), "policy configuration");
  if (!document.ok()) return 0;
  auto policy = airlock::policy::rules::CompiledPolicy::Compile(*document);
  if (!policy.ok()) return 0;
  for (const PolicyInput& input : inputs) {
    const airlock::Decision decision = (*policy)->Evaluate(input);
    auto back = airlock::Decision::FromJson(decision.ToJson());
    if (!back.ok()) {
      std::fprintf(stderr, "a decision does not read back: %s\n", back.status().message().c_str());
      std::abort();
    }
  }
  return 0;
}
