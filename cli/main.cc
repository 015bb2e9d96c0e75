// airlock: the command-line client of an Airlock kernel (its HTTP API only).
// `airlock help` lists the commands; docs/cli.md is the manual.
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace airlock::cli {
namespace {

struct Command {
  const char* name;
  const char* usage;
  const char* summary;
  FlagSpec flags;
  std::function<int(Invocation&)> run;
};

// Options every command takes.
const std::set<std::string> kGlobalValues = {"--server", "--ca-file"};
const std::set<std::string> kGlobalSwitches = {"--json", "--help", "-h"};

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"login",
       "login --server URL [--ca-file PEM] [--sso [--no-browser] [--issuer-ca-file PEM] "
       "[--timeout 5m]]",
       "Sign in: reads an API token from the terminal (not echoed) or stdin, or with --sso "
       "through the server's single sign-on in a browser; checks it, keeps it (0600)",
       {{"--issuer-ca-file", "--timeout"}, {"--sso", "--no-browser"}},
       Login},
      {"logout", "logout", "Forget the token and every kept grant", {}, Logout},
      {"whoami", "whoami", "Who the kept token is", {}, WhoAmI},
      {"datasets", "datasets", "The catalog, with what the policy would answer you", {}, Datasets},
      {"request",
       "request DATASET... [--for 2h] [--reason TEXT] [--columns DATASET:COL,COL]... "
       "[--start TIME] [--wait [--timeout 1h]]",
       "Ask for access; --wait follows it until ready (or refused)",
       {{"--for", "--reason", "--columns", "--start", "--timeout"}, {"--wait"}},
       AskFor},
      {"requests",
       "requests [--mine | --pending | --state STATE] [--limit N]",
       "Requests you may see; --pending: those waiting for your decision",
       {{"--state", "--limit"}, {"--mine", "--pending"}},
       Requests},
      {"show", "show ID", "One request", {}, Show},
      {"wait",
       "wait ID [--timeout 1h]",
       "Follow a request until it is ready or ended",
       {{"--timeout"}, {}},
       Wait},
      {"approve",
       "approve ID [--comment TEXT]",
       "Approve a request (or its extension)",
       {{"--comment"}, {}},
       Approve},
      {"deny",
       "deny ID [--comment TEXT]",
       "Deny a request (or its extension)",
       {{"--comment"}, {}},
       Deny},
      {"revoke",
       "revoke ID [--comment TEXT]",
       "End access now (or cancel an ask)",
       {{"--comment"}, {}},
       Revoke},
      {"extend",
       "extend ID --for 1h [--reason TEXT]",
       "Ask for more time on a ready request",
       {{"--for", "--reason"}, {}},
       Extend},
      {"connect",
       "connect ID [--print] [-- PSQL-ARGS]",
       "Collect the credential (once) and start psql with it in its environment; --print shows "
       "shell settings instead",
       {{}, {"--print"}},
       Connect},
      {"query",
       "query ID SQL [--format table|csv|json]",
       "Run one query through the tunnel",
       {{"--format"}, {}},
       Query},
      {"sites",
       "sites [suspend NAME --reason TEXT | resume NAME --reason TEXT]",
       "The agents' sites and their status; admins suspend or resume one",
       {{"--reason"}, {}},
       Sites},
      {"audit",
       "audit search [--subject S] [--dataset D] [--request ID] [--event E] "
       "[--since T] [--until T] [--limit N] [--all]",
       "Search the audit across requests, newest first",
       {{"--subject", "--dataset", "--request", "--event", "--since", "--until", "--limit"},
        {"--all"}},
       [](Invocation& in) {
         if (in.args.positional.empty() || in.args.positional[0] != "search") {
           return Fail(in, Status::InvalidArgument("usage: airlock audit search [filters]"));
         }
         in.args.positional.erase(in.args.positional.begin());
         return AuditSearch(in);
       }},
  };
  return kCommands;
}

void PrintHelp(std::ostream& out) {
  out << "airlock: ask for, approve and use time-boxed access to data.\n\n"
         "usage: airlock COMMAND [options]   (airlock COMMAND --help for one)\n\ncommands:\n";
  for (const Command& c : Commands()) {
    out << "  " << c.name << std::string(12 - std::strlen(c.name), ' ') << c.summary << "\n";
  }
  out << "  completion  bash|zsh: a completion script for your shell\n"
         "\noptions for every command:\n"
         "  --json         print the API's answers as JSON (for scripts)\n"
         "  --server URL   the kernel's API (default: the one you logged in to)\n"
         "  --ca-file PEM  trust this CA for the kernel and its tunnels\n"
         "\nexit codes: 0 ok, 1 failed, 2 bad usage or input, 3 not signed in or token refused,\n"
         "4 refused or denied, 5 not found, 6 conflict or gone, 7 server unreachable,\n"
         "8 the request ended without access (--wait)\n";
}

void PrintCompletion(std::ostream& out, const std::string& shell) {
  std::string names;
  for (const Command& c : Commands()) names += std::string(names.empty() ? "" : " ") + c.name;
  names += " completion help";
  if (shell == "zsh") {
    out << "#compdef airlock\n_airlock() {\n  local -a commands\n  commands=(" << names
        << ")\n  if (( CURRENT == 2 )); then\n    _describe 'command' commands\n  elif [[ "
           "${words[2]} == audit && CURRENT == 3 ]]; then\n    compadd search\n  elif [[ "
           "${words[2]} == sites && CURRENT == 3 ]]; then\n    compadd suspend resume\n  else\n    "
           "_files\n  fi\n}\ncompdef _airlock airlock\n";
    return;
  }
  out << "_airlock() {\n  local cur=${COMP_WORDS[COMP_CWORD]}\n  if [[ $COMP_CWORD -eq 1 ]]; "
         "then\n    COMPREPLY=($(compgen -W \""
      << names
      << "\" -- \"$cur\"))\n  elif [[ ${COMP_WORDS[1]} == audit && $COMP_CWORD -eq 2 ]]; then\n"
         "    COMPREPLY=($(compgen -W \"search\" -- \"$cur\"))\n  elif [[ ${COMP_WORDS[1]} == "
         "sites && "
         "$COMP_CWORD -eq 2 ]]; then\n    COMPREPLY=($(compgen -W \"suspend resume\" -- "
         "\"$cur\"))\n"
         "  elif [[ ${COMP_WORDS[1]} == "
         "completion ]]; then\n    COMPREPLY=($(compgen -W \"bash zsh\" -- \"$cur\"))\n  fi\n}\n"
         "complete -o default -F _airlock airlock\n";
}

int Main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "help" || words[0] == "--help" || words[0] == "-h") {
    PrintHelp(words.empty() ? std::cerr : std::cout);
    return words.empty() ? kExitUsage : kExitOk;
  }
  const std::string name = words[0];
  words.erase(words.begin());
  if (name == "completion") {
    if (words.size() != 1 || (words[0] != "bash" && words[0] != "zsh")) {
      std::cerr << "airlock: usage: airlock completion bash|zsh\n";
      return kExitUsage;
    }
    PrintCompletion(std::cout, words[0]);
    return kExitOk;
  }
  const Command* command = nullptr;
  for (const Command& c : Commands()) {
    if (name == c.name) command = &c;
  }
  if (command == nullptr) {
    std::cerr << "airlock: no command '" << name << "' (airlock help lists them)\n";
    return kExitUsage;
  }
  FlagSpec spec = command->flags;
  spec.with_value.insert(kGlobalValues.begin(), kGlobalValues.end());
  spec.boolean.insert(kGlobalSwitches.begin(), kGlobalSwitches.end());
  auto args = ParseArgs(words, spec);
  if (!args.ok()) {
    std::cerr << "airlock: " << args.status().message() << " (usage: airlock " << command->usage
              << ")\n";
    return kExitUsage;
  }
  if (args->Has("--help") || args->Has("-h")) {
    std::cout << "usage: airlock " << command->usage << "\n\n" << command->summary << ".\n";
    return kExitOk;
  }
  auto settings = LoadSettings();
  if (!settings.ok()) {
    std::cerr << "airlock: " << settings.status().message() << "\n";
    return kExitFailed;
  }
  Invocation in{std::move(args).value(), false, std::move(settings).value()};
  in.json = in.args.Has("--json");
  // --server and --ca-file override for this call (login keeps them).
  if (auto server = in.args.Value("--server"); !server.empty()) in.settings.server = server;
  if (auto ca = in.args.Value("--ca-file"); !ca.empty()) in.settings.ca_file = ca;
  return command->run(in);
}

}  // namespace

}  // namespace airlock::cli

int main(int argc, char** argv) {
  return airlock::cli::Main(argc, argv);
}
