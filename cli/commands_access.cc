// airlock connect / query: the tunnel grant of a ready request, collected
// from the kernel once (it is shown only once) and kept, 0600, under the
// configuration directory for later calls.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cli/commands.h"
#include "cli/output.h"
#include "kernel/common/http_call.h"

namespace airlock::cli {

using nlohmann::json;

namespace {

Result<json> GrantOf(Invocation& in, const std::string& id) {
  if (auto kept = LoadGrant(id)) return *kept;
  auto grant =
      Api(in.settings).Post("/v1/requests/" + UrlEncode(id) + "/credentials", json::object());
  if (!grant.ok()) {
    if (grant.status().code() == StatusCode::kFailedPrecondition) {
      return Status::FailedPrecondition(
          "the credential of " + id +
          " was collected already, elsewhere (the kernel shows it only once): " +
          grant.status().message());
    }
    return grant.status();
  }
  AIRLOCK_RETURN_IF_ERROR(SaveGrant(id, *grant));
  return grant;
}

bool IsPgwire(const json& grant) {
  return grant.value("transport", "") == "pgwire";
}

std::string ShellQuoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// Replaces this process with psql connected through `grant`, the password in
// its environment (never in its arguments), `extra` appended.
int ExecPsql(Invocation& in, const json& grant, const std::vector<std::string>& extra) {
  const std::string password = grant.value("credential", "");
  if (::setenv("PGPASSWORD", password.c_str(), 1) != 0) {
    return Fail(in, Status::Internal("cannot set PGPASSWORD"));
  }
  std::vector<std::string> words = {"psql", grant.value("url", "")};
  words.insert(words.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  in.out.flush();
  ::execvp("psql", argv.data());
  return Fail(in, Status::Unavailable(std::string("cannot run psql: ") + std::strerror(errno) +
                                      " (install postgresql-client, or use --print)"));
}

}  // namespace

int Connect(Invocation& in) {
  if (in.args.positional.size() != 1) {
    return Fail(in, Status::InvalidArgument("usage: airlock connect ID [--print] [-- PSQL-ARGS]"));
  }
  auto grant = GrantOf(in, in.args.positional[0]);
  if (!grant.ok()) return Fail(in, grant.status());
  if (in.json) {
    in.out << grant->dump() << '\n';
    return kExitOk;
  }
  if (in.args.Has("--print")) {
    // For eval "$(airlock connect ID --print)": the password reaches the
    // shell's environment, never a command line or the history.
    if (IsPgwire(*grant)) {
      in.out << "export PGHOST=" << ShellQuoted(grant->value("host", "")) << "\n"
             << "export PGPORT=" << ShellQuoted(std::to_string(grant->value("port", 0))) << "\n"
             << "export PGUSER=" << ShellQuoted(grant->value("user", "")) << "\n"
             << "export PGDATABASE=" << ShellQuoted(grant->value("database", "")) << "\n"
             << "export PGSSLMODE=" << ShellQuoted(grant->value("sslmode", "")) << "\n"
             << "export PGPASSWORD=" << ShellQuoted(grant->value("credential", "")) << "\n";
    } else {
      in.out << "export AIRLOCK_TUNNEL_URL=" << ShellQuoted(grant->value("url", "")) << "\n"
             << "export AIRLOCK_TUNNEL_CREDENTIAL=" << ShellQuoted(grant->value("credential", ""))
             << "\n";
    }
    return kExitOk;
  }
  if (IsPgwire(*grant)) return ExecPsql(in, *grant, in.args.passthrough);
  in.out << "The tunnel of " << in.args.positional[0] << " speaks HTTPS: open "
         << grant->value("url", "") << "/ in a browser and paste the credential "
         << "(airlock connect " << in.args.positional[0] << " --print shows it), or run "
         << "airlock query " << in.args.positional[0] << " 'SQL'.\n";
  return kExitOk;
}

int Query(Invocation& in) {
  if (in.args.positional.size() != 2) {
    return Fail(in,
                Status::InvalidArgument("usage: airlock query ID SQL [--format table|csv|json]"));
  }
  const std::string format = in.json ? "json" : in.args.Value("--format", "table");
  if (format != "table" && format != "csv" && format != "json") {
    return Fail(in, Status::InvalidArgument("--format is table, csv or json"));
  }
  const std::string& id = in.args.positional[0];
  const std::string& sql = in.args.positional[1];
  auto grant = GrantOf(in, id);
  if (!grant.ok()) return Fail(in, grant.status());
  if (IsPgwire(*grant)) {
    if (format == "json") {
      return Fail(in, Status::InvalidArgument("a pgwire tunnel answers as table or csv"));
    }
    std::vector<std::string> extra = {"-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql};
    if (format == "csv") extra.insert(extra.begin(), "--csv");
    return ExecPsql(in, *grant, extra);
  }
  HttpCall call;
  call.method = "POST";
  call.url = grant->value("url", "") + "/query";
  call.headers = {{"Authorization", "Bearer " + grant->value("credential", "")},
                  {"Content-Type", "application/json"}};
  call.body = json{{"sql", sql}}.dump();
  call.ca_file = in.settings.ca_file;
  call.timeout_seconds = 600;
  auto answer = HttpSend(call);
  if (!answer.ok())
    return Fail(in, Status::Unavailable("cannot reach the tunnel: " + answer.status().message()));
  if (answer->status != 200) return Fail(in, StatusForAnswer(answer->status, answer->body));
  const auto result = json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  if (!result.is_object()) return Fail(in, Status::Internal("the tunnel's answer is not JSON"));
  if (format == "json") {
    in.out << result.dump() << '\n';
    return kExitOk;
  }
  std::vector<std::string> header;
  for (const auto& c : result.value("columns", json::array()))
    header.push_back(c.value("name", ""));
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : result.value("rows", json::array())) {
    std::vector<std::string> cells;
    for (const auto& cell : row) {
      cells.push_back(cell.is_string() ? cell.get<std::string>()
                      : cell.is_null() ? ""
                                       : cell.dump());
    }
    rows.push_back(std::move(cells));
  }
  if (format == "csv") {
    for (size_t i = 0; i < header.size(); ++i) in.out << (i ? "," : "") << CsvField(header[i]);
    in.out << "\n";
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) in.out << (i ? "," : "") << CsvField(row[i]);
      in.out << "\n";
    }
  } else {
    PrintTable(in.out, header, rows);
    in.out << "(" << rows.size() << " row" << (rows.size() == 1 ? "" : "s") << ")\n";
  }
  return kExitOk;
}

}  // namespace airlock::cli
