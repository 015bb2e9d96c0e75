// airlock sites [suspend|resume NAME --reason TEXT]: the agents' sites, and
// an admin taking one out of service or back (docs/sites.md).
#include "cli/commands.h"
#include "cli/output.h"
#include "kernel/common/http_call.h"

namespace airlock::cli {

using nlohmann::json;

namespace {

constexpr const char* kUsage =
    "usage: airlock sites [suspend NAME --reason TEXT | resume NAME --reason TEXT]";

int ListSites(Invocation& in) {
  auto agents = Api(in.settings).Get("/v1/agents");
  if (!agents.ok()) return Fail(in, agents.status());
  if (in.json) {
    in.out << agents->dump() << '\n';
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : agents->value("agents", json::array())) {
    std::string status = a.value("status", "");
    std::string note = a.value("reason", "");
    if (a.contains("suspension")) {
      const json& s = a["suspension"];
      status = "suspended";
      note = s.value("reason", "") + " (" + s.value("by", "") + ", " +
             UtcMinute(s.value("since_us", int64_t{0})) + ")";
    }
    const int64_t enclaves = a.value("enclaves", int64_t{0});
    rows.push_back({a.value("name", ""), status, UtcMinute(a.value("last_seen_us", int64_t{0})),
                    std::to_string(enclaves), note});
  }
  PrintTable(in.out, {"SITE", "STATUS", "LAST SEEN", "ENCLAVES", "NOTE"}, rows);
  return kExitOk;
}

int Act(Invocation& in, const std::string& action, const std::string& name) {
  const std::string reason = in.args.Value("--reason");
  if (reason.empty()) return Fail(in, Status::InvalidArgument(kUsage));
  auto answer = Api(in.settings)
                    .Post("/v1/agents/" + UrlEncode(name) + "/" + action, json{{"reason", reason}});
  if (!answer.ok()) return Fail(in, answer.status());
  if (in.json) {
    in.out << answer->dump() << '\n';
    return kExitOk;
  }
  if (action == "suspend") {
    const json closed = answer->value("closed_requests", json::array());
    std::string ids;
    for (const auto& id : closed) {
      if (id.is_string()) ids += (ids.empty() ? ": " : ", ") + id.get<std::string>();
    }
    in.out << "Site " << name << " suspended; " << closed.size() << " request(s) closed" << ids
           << "\n";
  } else {
    in.out << "Site " << name << " resumed\n";
  }
  return kExitOk;
}

}  // namespace

int Sites(Invocation& in) {
  const auto& words = in.args.positional;
  if (words.empty()) return ListSites(in);
  if (words.size() == 2 && (words[0] == "suspend" || words[0] == "resume")) {
    return Act(in, words[0], words[1]);
  }
  return Fail(in, Status::InvalidArgument(kUsage));
}

}  // namespace airlock::cli
