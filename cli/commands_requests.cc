// airlock datasets / request / requests / show / approve / deny / revoke /
// extend / wait.
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "cli/commands.h"
#include "cli/output.h"
#include "kernel/common/http_call.h"

namespace airlock::cli {

using nlohmann::json;

namespace {

std::string Join(const json& list, const char* separator = ", ") {
  std::string text;
  if (!list.is_array()) return text;
  for (const auto& item : list) {
    if (!item.is_string()) continue;
    text += (text.empty() ? "" : separator) + item.get<std::string>();
  }
  return text;
}

// What the policy would answer, in a few words (GET /v1/catalog?for=me).
std::string ForMe(const json& preview) {
  if (!preview.is_object()) return "";
  const std::string effect = preview.value("effect", "");
  if (effect == "deny") return "not for you";
  std::string text = effect == "allow" ? "granted at once" : "needs approval";
  if (effect == "needs_approval") {
    const std::string groups = Join(preview["approval"].value("groups", json::array()));
    if (!groups.empty()) text += " by " + groups;
  }
  const json scope = preview.value("obligations", json::object());
  if (!scope.value("columns", json::array()).empty()) text += "; only " + Join(scope["columns"]);
  if (!scope.value("masks", json::object()).empty()) text += "; some columns masked";
  if (!scope.value("row_filter", json::array()).empty()) text += "; some rows only";
  return text;
}

const std::set<std::string> kEnded = {"denied", "closed", "failed", "expired", "cancelled"};

std::string WindowEnds(const json& request) {
  if (request.value("state", "") != "ready") return "";
  return UtcMinute(request.value("deadline_us", int64_t{0}));
}

void PrintRequest(std::ostream& out, const json& r) {
  const json ask = r.value("request", json::object());
  out << r.value("id", "") << "  " << r.value("state", "") << "\n";
  out << "  requester  " << r.value("requester", json::object()).value("subject", "") << "\n";
  out << "  datasets   " << Join(ask.value("datasets", json::array())) << "\n";
  if (ask.contains("columns")) {
    for (const auto& [dataset, columns] : ask["columns"].items()) {
      out << "  columns    " << dataset << ": " << Join(columns) << "\n";
    }
  }
  out << "  purpose    " << ask.value("purpose", "") << "\n";
  out << "  window     " << ShortDuration(ask.value("window_seconds", int64_t{0})) << "\n";
  if (const std::string ends = WindowEnds(r); !ends.empty()) out << "  ends       " << ends << "\n";
  if (!r.value("reason", "").empty()) out << "  reason     " << r.value("reason", "") << "\n";
  const json tunnel = r.value("tunnel", json::object());
  if (!tunnel.empty()) out << "  tunnel     " << tunnel.value("transport", "") << "\n";
}

// How far the request's enclave has pulled its datasets.
std::string PullProgress(const json& request) {
  const json progress = request.value("enclave", json::object()).value("progress", json::object());
  const json asked = request.value("request", json::object()).value("datasets", json::array());
  return IngestionProgress(progress, asked.is_array() ? asked.size() : 0);
}

// Follows request `id` until it is ready or ended, telling each step on
// stderr; the exit code: 0 once ready, kExitNoAccess when it ended without.
int FollowUntilSettled(Invocation& in, const std::string& id, int64_t timeout_seconds) {
  Api api(in.settings);
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  std::string last_line;
  json request;
  while (true) {
    auto fetched = api.Get("/v1/requests/" + UrlEncode(id));
    if (!fetched.ok()) return Fail(in, fetched.status());
    request = std::move(fetched).value();
    const std::string state = request.value("state", "");
    std::string line = id + ": " + state;
    if (state == "pending_approval") line += " (" + request.value("reason", "") + ")";
    if (state == "ingesting") line += " " + PullProgress(request);
    if (line != last_line) {
      // On a terminal the ingestion count updates in place.
      const bool same_step =
          terminal && last_line.rfind(id + ": ingesting", 0) == 0 && state == "ingesting";
      in.err << (same_step ? "\r" : (last_line.empty() || !terminal ? "" : "\n")) << line
             << (terminal ? "" : "\n") << std::flush;
      last_line = line;
    }
    if (state == "ready" || kEnded.count(state)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      if (terminal) in.err << '\n';
      return Fail(
          in, Status::DeadlineExceeded("still " + state + " after " +
                                       ShortDuration(timeout_seconds) + "; airlock wait " + id));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (terminal) in.err << '\n';
  if (in.json) {
    in.out << request.dump() << '\n';
  } else {
    PrintRequest(in.out, request);
  }
  return request.value("state", "") == "ready" ? kExitOk : kExitNoAccess;
}

int DecideOn(Invocation& in, const char* verb) {
  if (in.args.positional.size() != 1) {
    return Fail(in, Status::InvalidArgument(std::string("usage: airlock ") + verb +
                                            " ID [--comment TEXT]"));
  }
  const std::string& id = in.args.positional[0];
  json body = json::object();
  if (auto comment = in.args.Value("--comment"); !comment.empty()) body["comment"] = comment;
  auto answer = Api(in.settings).Post("/v1/requests/" + UrlEncode(id) + "/" + verb, body);
  if (!answer.ok()) return Fail(in, answer.status());
  if (in.json) {
    in.out << answer->dump() << '\n';
  } else {
    in.out << id << " is now " << answer->value("state", "") << "\n";
  }
  return kExitOk;
}

// --columns DATASET:COL,COL (repeatable) as the ask's "columns".
Result<json> AskedColumns(const std::vector<std::string>& specs) {
  json columns = json::object();
  for (const std::string& spec : specs) {
    const size_t colon = spec.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size()) {
      return Status::InvalidArgument("--columns takes DATASET:COLUMN,COLUMN (got '" + spec + "')");
    }
    json& list = columns[spec.substr(0, colon)];
    size_t at = colon + 1;
    while (at <= spec.size()) {
      const size_t comma = std::min(spec.find(',', at), spec.size());
      if (comma > at) list.push_back(spec.substr(at, comma - at));
      at = comma + 1;
    }
  }
  return columns;
}

}  // namespace

int Datasets(Invocation& in) {
  auto catalog = Api(in.settings).Get("/v1/catalog?for=me");
  if (!catalog.ok()) return Fail(in, catalog.status());
  if (in.json) {
    in.out << catalog->dump() << '\n';
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : catalog->value("datasets", json::array())) {
    std::string columns;
    for (const auto& c : d.value("columns", json::array())) {
      if (c.is_object()) columns += (columns.empty() ? "" : ", ") + c.value("name", "");
    }
    rows.push_back({d.value("name", ""), d.value("description", ""),
                    Join(d.value("tags", json::array())), columns,
                    ForMe(d.value("for_me", json::object()))});
  }
  PrintTable(in.out, {"DATASET", "DESCRIPTION", "TAGS", "COLUMNS", "FOR YOU"}, rows);
  return kExitOk;
}

int AskFor(Invocation& in) {
  if (in.args.positional.empty()) {
    return Fail(in,
                Status::InvalidArgument("usage: airlock request DATASET... [--for 2h] "
                                        "[--reason TEXT] [--columns DATASET:COL,COL] [--wait]"));
  }
  json ask = {{"datasets", in.args.positional}};
  if (auto window = in.args.Value("--for"); !window.empty()) {
    auto seconds = ParseDuration(window);
    if (!seconds.ok()) return Fail(in, seconds.status());
    ask["window_seconds"] = *seconds;
  }
  if (auto reason = in.args.Value("--reason"); !reason.empty()) ask["purpose"] = reason;
  if (auto start = in.args.Value("--start"); !start.empty()) ask["not_before"] = start;
  if (!in.args.All("--columns").empty()) {
    auto columns = AskedColumns(in.args.All("--columns"));
    if (!columns.ok()) return Fail(in, columns.status());
    ask["columns"] = *columns;
  }
  auto created = Api(in.settings).Post("/v1/requests", ask);
  if (!created.ok()) return Fail(in, created.status());
  const std::string id = created->value("id", "");
  const std::string state = created->value("state", "");
  if (state == "denied") {
    if (in.json) in.out << created->dump() << '\n';
    in.err << "airlock: denied: " << created->value("reason", "") << '\n';
    return kExitRefused;
  }
  if (in.args.Has("--wait")) {
    in.err << "asked: " << id << '\n';
    int64_t timeout = 24 * 3600;
    if (auto limit = in.args.Value("--timeout"); !limit.empty()) {
      auto seconds = ParseDuration(limit);
      if (!seconds.ok()) return Fail(in, seconds.status());
      timeout = *seconds;
    }
    return FollowUntilSettled(in, id, timeout);
  }
  if (in.json) {
    in.out << created->dump() << '\n';
  } else {
    in.out << id << "  " << state << "\n";
  }
  return kExitOk;
}

int Wait(Invocation& in) {
  if (in.args.positional.size() != 1) {
    return Fail(in, Status::InvalidArgument("usage: airlock wait ID [--timeout 1h]"));
  }
  int64_t timeout = 24 * 3600;
  if (auto limit = in.args.Value("--timeout"); !limit.empty()) {
    auto seconds = ParseDuration(limit);
    if (!seconds.ok()) return Fail(in, seconds.status());
    timeout = *seconds;
  }
  return FollowUntilSettled(in, in.args.positional[0], timeout);
}

int Requests(Invocation& in) {
  std::string query = "/v1/requests?limit=" + in.args.Value("--limit", "50");
  if (in.args.Has("--pending")) {
    query += "&awaiting=me";
  } else {
    if (in.args.Has("--mine")) query += "&mine=true";
    if (auto state = in.args.Value("--state"); !state.empty())
      query += "&state=" + UrlEncode(state);
  }
  auto listed = Api(in.settings).Get(query);
  if (!listed.ok()) return Fail(in, listed.status());
  if (in.json) {
    in.out << listed->dump() << '\n';
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : listed->value("requests", json::array())) {
    const json ask = r.value("request", json::object());
    rows.push_back({r.value("id", ""), r.value("state", ""),
                    r.value("requester", json::object()).value("subject", ""),
                    Join(ask.value("datasets", json::array())),
                    ShortDuration(ask.value("window_seconds", int64_t{0})),
                    ask.value("purpose", ""), WindowEnds(r)});
  }
  PrintTable(in.out, {"ID", "STATE", "REQUESTER", "DATASETS", "WINDOW", "PURPOSE", "ENDS"}, rows);
  return kExitOk;
}

int Show(Invocation& in) {
  if (in.args.positional.size() != 1) {
    return Fail(in, Status::InvalidArgument("usage: airlock show ID"));
  }
  auto request = Api(in.settings).Get("/v1/requests/" + UrlEncode(in.args.positional[0]));
  if (!request.ok()) return Fail(in, request.status());
  if (in.json) {
    in.out << request->dump() << '\n';
  } else {
    PrintRequest(in.out, *request);
  }
  return kExitOk;
}

int Approve(Invocation& in) {
  return DecideOn(in, "approve");
}
int Deny(Invocation& in) {
  return DecideOn(in, "deny");
}
int Revoke(Invocation& in) {
  return DecideOn(in, "revoke");
}

int Extend(Invocation& in) {
  const std::string window = in.args.Value("--for");
  if (in.args.positional.size() != 1 || window.empty()) {
    return Fail(in, Status::InvalidArgument("usage: airlock extend ID --for 1h [--reason TEXT]"));
  }
  auto seconds = ParseDuration(window);
  if (!seconds.ok()) return Fail(in, seconds.status());
  json body = {{"window_seconds", *seconds}};
  if (auto reason = in.args.Value("--reason"); !reason.empty()) body["purpose"] = reason;
  const std::string& id = in.args.positional[0];
  auto answer = Api(in.settings).Post("/v1/requests/" + UrlEncode(id) + "/extend", body);
  if (!answer.ok()) return Fail(in, answer.status());
  if (in.json) {
    in.out << answer->dump() << '\n';
  } else if (answer->value("request", json::object()).contains("extension")) {
    in.out << id << ": the extension waits for approval\n";
  } else {
    in.out << id << " now ends " << WindowEnds(*answer) << "\n";
  }
  return kExitOk;
}

}  // namespace airlock::cli
