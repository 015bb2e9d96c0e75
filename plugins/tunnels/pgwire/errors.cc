#include "errors.h"

#include <algorithm>
#include <cctype>

#include "sql_text.h"

namespace airlock::tunnels::pgwire {
namespace {

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// The enclave's engine reports SQL errors as InvalidArgument with the
// engine's message; its wording tells the class apart.
const char* InvalidArgumentState(const std::string& lower) {
  if (Contains(lower, "no such table") || Contains(lower, "no such view") ||
      (Contains(lower, "relation") && Contains(lower, "does not exist"))) {
    return sqlstate::kUndefinedTable;
  }
  if (Contains(lower, "no such column")) return sqlstate::kUndefinedColumn;
  if (Contains(lower, "ambiguous column")) return sqlstate::kAmbiguousColumn;
  if (Contains(lower, "no such function") || Contains(lower, "wrong number of arguments")) {
    return sqlstate::kUndefinedFunction;
  }
  if (Contains(lower, "syntax error") || Contains(lower, "incomplete input") ||
      Contains(lower, "unrecognized token") || Contains(lower, "one statement per query") ||
      Contains(lower, "query is empty")) {
    return sqlstate::kSyntaxError;
  }
  return sqlstate::kSyntaxOrAccessRule;
}

}  // namespace

PgError MakeError(std::string_view state, std::string message, std::string_view severity) {
  PgError error;
  error.severity = std::string(severity);
  error.sqlstate = std::string(state);
  error.message = std::move(message);
  return error;
}

const char* CloseReasonName(sdk::CloseReason reason) {
  switch (reason) {
    case sdk::CloseReason::kWindowEnded:
      return "window_ended";
    case sdk::CloseReason::kShutdown:
      return "kernel_shutdown";
    case sdk::CloseReason::kFailed:
      return "request_failed";
    case sdk::CloseReason::kRevoked:
      break;
  }
  return "revoked";
}

PgError ClosedError(sdk::CloseReason reason, const std::string& request_id, bool connected) {
  std::string what;
  switch (reason) {
    case sdk::CloseReason::kWindowEnded:
      what = "the access window for request \"" + request_id + "\" has ended";
      break;
    case sdk::CloseReason::kShutdown:
      what = "access for request \"" + request_id + "\" ended when the Airlock kernel shut down";
      break;
    case sdk::CloseReason::kFailed:
      what = "request \"" + request_id + "\" failed and its data is gone";
      break;
    case sdk::CloseReason::kRevoked:
      what = "access for request \"" + request_id + "\" has been revoked";
      break;
  }
  PgError error =
      connected ? MakeError(sqlstate::kAdminShutdown, "terminating connection: " + what, "FATAL")
                : MakeError(sqlstate::kInvalidAuthorization, what, "FATAL");
  error.detail = std::string("reason: ") + CloseReasonName(reason);
  if (reason == sdk::CloseReason::kWindowEnded) error.hint = "Ask for a new access request.";
  return error;
}

PgError StatementError(const Status& status, std::string_view keyword) {
  std::string lower = status.message();
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return MakeError(InvalidArgumentState(lower), status.message());
    case StatusCode::kNotFound:
      return MakeError(sqlstate::kUndefinedTable, status.message());
    case StatusCode::kPermissionDenied:
      if (IsWriteKeyword(keyword) || Contains(lower, "read-only") || Contains(lower, "readonly")) {
        PgError error = MakeError(sqlstate::kReadOnlyTransaction, status.message());
        error.hint = "the enclave is sealed: only read-only queries run";
        return error;
      }
      return MakeError(sqlstate::kInsufficientPrivilege, status.message());
    case StatusCode::kUnauthenticated:
      return MakeError(sqlstate::kInvalidAuthorization, status.message());
    case StatusCode::kCancelled:
      return MakeError(sqlstate::kQueryCanceled, "canceling statement due to user request");
    case StatusCode::kDeadlineExceeded:
      return MakeError(sqlstate::kQueryCanceled, "canceling statement due to statement timeout");
    case StatusCode::kResourceExhausted:
      return MakeError(sqlstate::kProgramLimitExceeded, status.message());
    case StatusCode::kNotImplemented:
    case StatusCode::kTypeNotRepresentable:
      return MakeError(sqlstate::kFeatureNotSupported, status.message());
    case StatusCode::kFailedPrecondition:
    case StatusCode::kConflict:
      return MakeError(sqlstate::kObjectNotInPrerequisiteState, status.message());
    case StatusCode::kUnavailable:
      return MakeError(sqlstate::kSystemError, status.message());
    default:
      return MakeError(sqlstate::kInternalError, status.message());
  }
}

}  // namespace airlock::tunnels::pgwire
