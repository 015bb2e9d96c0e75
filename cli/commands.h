// The CLI's commands (one function each; main.cc holds the table of names,
// options and help). Each returns the process's exit code (api.h).
#pragma once

#include <iostream>
#include <string>

#include "cli/api.h"
#include "cli/args.h"
#include "cli/settings.h"

namespace airlock::cli {

struct Invocation {
  Args args;
  bool json = false;  // --json: the API's answers as they are
  Settings settings;
  std::ostream& out = std::cout;
  std::ostream& err = std::cerr;
};

// Prints "airlock: <message>" (one line) and returns its exit code.
int Fail(Invocation& in, const Status& status);

// Signing in (commands_session.cc).
int Login(Invocation& in);
int Logout(Invocation& in);
int WhoAmI(Invocation& in);

// Asking and deciding (commands_requests.cc).
int Datasets(Invocation& in);
int AskFor(Invocation& in);
int Requests(Invocation& in);
int Show(Invocation& in);
int Approve(Invocation& in);
int Deny(Invocation& in);
int Revoke(Invocation& in);
int Extend(Invocation& in);
int Wait(Invocation& in);

// Using a grant (commands_access.cc).
int Connect(Invocation& in);
int Query(Invocation& in);

// The audit (commands_audit.cc).
int AuditSearch(Invocation& in);

// Sites: list, suspend, resume (commands_sites.cc).
int Sites(Invocation& in);

}  // namespace airlock::cli
