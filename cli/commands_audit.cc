// airlock audit search: GET /v1/audit across requests, newest first,
// following page tokens while --all asks for everything.
#include <charconv>

#include "cli/commands.h"
#include "cli/output.h"
#include "kernel/common/http_call.h"

namespace airlock::cli {

using nlohmann::json;

int AuditSearch(Invocation& in) {
  if (!in.args.positional.empty()) {
    return Fail(in,
                Status::InvalidArgument("usage: airlock audit search [--subject S] [--dataset D] "
                                        "[--request ID] [--event E] [--since T] [--until T] "
                                        "[--limit N] [--all]"));
  }
  std::string query;
  for (const char* name : {"subject", "dataset", "request", "event", "since", "until", "limit"}) {
    const std::string value = in.args.Value(std::string("--") + name);
    if (!value.empty())
      query += std::string(query.empty() ? "" : "&") + name + "=" + UrlEncode(value);
  }
  // A request alone would read its trail (oldest first); the CLI always
  // searches, newest first.
  if (query.find("subject=") == std::string::npos && query.find("dataset=") == std::string::npos &&
      query.find("event=") == std::string::npos && query.find("since=") == std::string::npos &&
      query.find("until=") == std::string::npos) {
    query += std::string(query.empty() ? "" : "&") + "since=1";
  }
  Api api(in.settings);
  json records = json::array();
  std::string page_token;
  while (true) {
    std::string path = "/v1/audit?" + query;
    if (!page_token.empty()) path += "&page_token=" + UrlEncode(page_token);
    auto page = api.Get(path);
    if (!page.ok()) return Fail(in, page.status());
    for (auto& record : (*page)["records"]) records.push_back(std::move(record));
    page_token = page->value("next_page_token", "");
    if (page_token.empty()) break;
    // Without --all, one page's worth (a short page goes on to fill it).
    size_t wanted = 100;
    const std::string limit = in.args.Value("--limit", "100");
    std::from_chars(limit.data(), limit.data() + limit.size(), wanted);
    if (!in.args.Has("--all") && records.size() >= wanted) break;
  }
  if (in.json) {
    json answer = {{"records", records}};
    if (!page_token.empty()) answer["next_page_token"] = page_token;
    in.out << answer.dump() << '\n';
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : records) {
    const json who = r.contains("actor") ? r["actor"] : r.value("principal", json::object());
    std::string details = r.value("reason", "");
    if (details.empty()) details = r.value("comment", "");
    rows.push_back({r.value("ts", ""), r.value("event", ""), r.value("request_id", ""),
                    who.is_object() ? who.value("subject", "") : "", details});
  }
  PrintTable(in.out, {"TIME", "EVENT", "REQUEST", "WHO", "DETAILS"}, rows);
  if (!page_token.empty()) in.out << "(older records may match: --all reads on)\n";
  return kExitOk;
}

}  // namespace airlock::cli
