// airlock login / logout / whoami.
#include <termios.h>
#include <unistd.h>

#include <string>

#include "cli/commands.h"
#include "cli/sso.h"
#include "kernel/common/http_call.h"

namespace airlock::cli {

namespace {

// One line from standard input; from a terminal, prompted on stderr and not
// echoed.
Result<std::string> ReadToken(std::ostream& err) {
  const bool terminal = ::isatty(STDIN_FILENO) != 0;
  termios saved{};
  if (terminal) {
    err << "API token (not echoed): " << std::flush;
    if (::tcgetattr(STDIN_FILENO, &saved) == 0) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
  }
  std::string token;
  std::getline(std::cin, token);
  if (terminal) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    err << '\n';
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return Status::InvalidArgument("no token given");
  if (token.size() > 16384) return Status::InvalidArgument("that is too long for a token");
  return token;
}

// The single sign-on the server offers the CLI (console.oidc with a
// cli_client_id, published in /console/config.json), run in a browser.
Result<std::string> SignInThroughTheServersProvider(Invocation& in, const Settings& server) {
  HttpCall call;
  std::string base = server.server;
  while (!base.empty() && base.back() == '/') base.pop_back();
  call.url = base + "/console/config.json";
  call.ca_file = server.ca_file;
  call.timeout_seconds = 30;
  auto answer = HttpSend(call);
  if (!answer.ok()) {
    return Status::Unavailable("cannot reach " + base + ": " + answer.status().message());
  }
  const auto config = nlohmann::json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json oidc =
      config.is_object() && config.contains("oidc") ? config["oidc"] : nlohmann::json();
  if (answer->status != 200 || !oidc.is_object() || oidc.value("cli_client_id", "").empty()) {
    return Status::FailedPrecondition(
        base +
        " offers no single sign-on for the CLI (its console.oidc.cli_client_id is not "
        "set); sign in with an API token instead: airlock login");
  }
  SsoSettings sso;
  sso.issuer = oidc.value("issuer", "");
  sso.client_id = oidc.value("cli_client_id", "");
  sso.scopes = oidc.value("scopes", sso.scopes);
  sso.ca_file = in.args.Value("--issuer-ca-file");
  sso.open_browser = !in.args.Has("--no-browser");
  if (std::string timeout = in.args.Value("--timeout"); !timeout.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(int64_t seconds, ParseDuration(timeout));
    sso.timeout = std::chrono::seconds(seconds);
  }
  return SignInWithSso(sso, in.err);
}

std::string Groups(const nlohmann::json& me) {
  std::string list;
  for (const auto& g : me.value("groups", nlohmann::json::array())) {
    if (g.is_string()) list += (list.empty() ? "" : ", ") + g.get<std::string>();
  }
  return list;
}

}  // namespace

int Login(Invocation& in) {
  Settings next = in.settings;
  if (std::string server = in.args.Value("--server"); !server.empty()) next.server = server;
  if (std::string ca = in.args.Value("--ca-file"); !ca.empty()) next.ca_file = ca;
  if (next.server.empty()) {
    return Fail(in,
                Status::InvalidArgument("which server? airlock login --server https://HOST:PORT"));
  }
  if (next.server.rfind("https://", 0) != 0 && next.server.rfind("http://", 0) != 0) {
    return Fail(in, Status::InvalidArgument("the server is a URL: https://HOST:PORT"));
  }
  auto token = in.args.Has("--sso") ? SignInThroughTheServersProvider(in, next) : ReadToken(in.err);
  if (!token.ok()) return Fail(in, token.status());
  next.token = *token;
  // Kept only once the server accepts it.
  auto me = Api(next).Get("/v1/me");
  if (!me.ok()) {
    if (me.status().code() == StatusCode::kUnauthenticated) {
      return Fail(in, Status::Unauthenticated("the server did not accept that token"));
    }
    return Fail(in, me.status());
  }
  if (Status saved = SaveSettings(next); !saved.ok()) return Fail(in, saved);
  if (in.json) {
    in.out << me->dump() << '\n';
  } else {
    in.out << "Signed in to " << next.server << " as " << me->value("subject", "") << " ("
           << Groups(*me) << ")\n";
  }
  return kExitOk;
}

int Logout(Invocation& in) {
  if (Status forgot = ForgetLogin(); !forgot.ok()) return Fail(in, forgot);
  if (!in.json)
    in.out << "Signed out; the token and kept grants are gone from " << ConfigDir() << "\n";
  return kExitOk;
}

int WhoAmI(Invocation& in) {
  auto me = Api(in.settings).Get("/v1/me");
  if (!me.ok()) return Fail(in, me.status());
  if (in.json) {
    in.out << me->dump() << '\n';
    return kExitOk;
  }
  in.out << me->value("subject", "") << " (" << me->value("kind", "") << ") on "
         << in.settings.server << "\ngroups: " << Groups(*me)
         << (me->value("admin", false) ? "\nadmin: yes" : "") << '\n';
  return kExitOk;
}

}  // namespace airlock::cli
