// SQLSTATEs for what the tunnel reports: the query channel's status codes
// mapped to PostgreSQL error classes, and the tunnel's own refusals.
#pragma once

#include <string>
#include <string_view>

#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "wire.h"

namespace airlock::tunnels::pgwire {

namespace sqlstate {
inline constexpr char kProtocolViolation[] = "08P01";
inline constexpr char kInvalidAuthorization[] = "28000";
inline constexpr char kInvalidPassword[] = "28P01";
inline constexpr char kInvalidCatalogName[] = "3D000";
inline constexpr char kSyntaxError[] = "42601";
inline constexpr char kUndefinedTable[] = "42P01";
inline constexpr char kUndefinedColumn[] = "42703";
inline constexpr char kUndefinedFunction[] = "42883";
inline constexpr char kAmbiguousColumn[] = "42702";
inline constexpr char kUndefinedObject[] = "42704";
inline constexpr char kInsufficientPrivilege[] = "42501";
inline constexpr char kSyntaxOrAccessRule[] = "42000";
inline constexpr char kReadOnlyTransaction[] = "25006";
inline constexpr char kQueryCanceled[] = "57014";
inline constexpr char kAdminShutdown[] = "57P01";
inline constexpr char kTooManyConnections[] = "53300";
inline constexpr char kInsufficientResources[] = "53000";
inline constexpr char kProgramLimitExceeded[] = "54000";
inline constexpr char kFeatureNotSupported[] = "0A000";
inline constexpr char kInvalidSqlStatementName[] = "26000";
inline constexpr char kDuplicatePreparedStatement[] = "42P05";
inline constexpr char kInvalidCursorName[] = "34000";
inline constexpr char kUndefinedParameter[] = "42P02";
inline constexpr char kSystemError[] = "58000";
inline constexpr char kObjectNotInPrerequisiteState[] = "55000";
inline constexpr char kInternalError[] = "XX000";
}  // namespace sqlstate

// An ERROR for a failed statement. `keyword` is the statement's first
// keyword (upper case): a refusal of a write statement is reported as 25006.
PgError StatementError(const Status& status, std::string_view keyword);

PgError MakeError(std::string_view sqlstate, std::string message,
                  std::string_view severity = "ERROR");

// The FATAL for request `request_id`'s endpoint closed for `reason`.
// `connected`: a live session is being ended (57P01, "terminating
// connection: ..."); otherwise a new connection is refused (28000). The
// message says which it was ("has been revoked", "access window ... has
// ended", ...) and the DETAIL carries the reason's name (revoked,
// window_ended, kernel_shutdown, request_failed) for programs.
PgError ClosedError(sdk::CloseReason reason, const std::string& request_id, bool connected);

// The reason's name: "revoked", "window_ended", "kernel_shutdown", "request_failed".
const char* CloseReasonName(sdk::CloseReason reason);

}  // namespace airlock::tunnels::pgwire
