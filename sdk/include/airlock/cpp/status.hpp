// Status and Result<T>: how every Airlock C++ API reports failure instead of
// throwing. The codes are the ABI's airlock_type_status values, so a Status
// crosses the plugin boundary as (code, message) without translation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "airlock/c/airlock_plugin.h"

namespace airlock {

enum class StatusCode : int32_t {
  kOk = AIRLOCK_OK,
  kUnknown = AIRLOCK_ERR_UNKNOWN,
  kInvalidArgument = AIRLOCK_ERR_INVALID_ARGUMENT,
  kNotFound = AIRLOCK_ERR_NOT_FOUND,
  kPermissionDenied = AIRLOCK_ERR_PERMISSION_DENIED,
  kUnauthenticated = AIRLOCK_ERR_UNAUTHENTICATED,
  kUnavailable = AIRLOCK_ERR_UNAVAILABLE,
  kCancelled = AIRLOCK_ERR_CANCELLED,
  kDeadlineExceeded = AIRLOCK_ERR_DEADLINE_EXCEEDED,
  kResourceExhausted = AIRLOCK_ERR_RESOURCE_EXHAUSTED,
  kNotImplemented = AIRLOCK_ERR_NOT_IMPLEMENTED,
  kTypeNotRepresentable = AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE,
  kInternal = AIRLOCK_ERR_INTERNAL,
  kNotApplicable = AIRLOCK_ERR_NOT_APPLICABLE,
  kFailedPrecondition = AIRLOCK_ERR_FAILED_PRECONDITION,
  kAlreadyExists = AIRLOCK_ERR_ALREADY_EXISTS,
  kConflict = AIRLOCK_ERR_CONFLICT,
};

// Stable snake_case name of a code; used in JSON errors and audit records.
inline const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kUnknown:
      return "unknown";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kPermissionDenied:
      return "permission_denied";
    case StatusCode::kUnauthenticated:
      return "unauthenticated";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case StatusCode::kNotImplemented:
      return "not_implemented";
    case StatusCode::kTypeNotRepresentable:
      return "type_not_representable";
    case StatusCode::kInternal:
      return "internal";
    case StatusCode::kNotApplicable:
      return "not_applicable";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kConflict:
      return "conflict";
  }
  return "unknown";
}

// Maps a raw ABI status (possibly from a newer plugin) onto a known code.
inline StatusCode StatusCodeFromAbi(airlock_type_status raw) {
  if (raw < AIRLOCK_OK || raw > AIRLOCK_ERR_CONFLICT) return StatusCode::kUnknown;
  return static_cast<StatusCode>(raw);
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status Unknown(std::string m) { return {StatusCode::kUnknown, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status Unauthenticated(std::string m) {
    return {StatusCode::kUnauthenticated, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) {
    return {StatusCode::kDeadlineExceeded, std::move(m)};
  }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status NotImplemented(std::string m) {
    return {StatusCode::kNotImplemented, std::move(m)};
  }
  static Status TypeNotRepresentable(std::string m) {
    return {StatusCode::kTypeNotRepresentable, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status NotApplicable(std::string m) { return {StatusCode::kNotApplicable, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const {
    if (ok()) return "ok";
    return std::string(StatusCodeName(code_)) + ": " + message_;
  }
  // Prefixes the message with context, keeping the code ("loading x: <msg>").
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(code_, std::string(context) + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : storage_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : storage_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(storage_).ok()) {
      storage_ = Status::Internal("Result constructed from an ok Status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(storage_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(storage_);
  }
  T& value() & { return std::get<T>(storage_); }
  const T& value() const& { return std::get<T>(storage_); }
  T&& value() && { return std::get<T>(std::move(storage_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> storage_;
};

}  // namespace airlock

// Returns early from the enclosing function when `expr` is not ok.
#define AIRLOCK_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::airlock::Status airlock_status_ = (expr);        \
    if (!airlock_status_.ok()) return airlock_status_; \
  } while (0)

#define AIRLOCK_CONCAT_INNER_(a, b) a##b
#define AIRLOCK_CONCAT_(a, b) AIRLOCK_CONCAT_INNER_(a, b)
// Declares `lhs` from a Result, returning its Status early on failure.
#define AIRLOCK_ASSIGN_OR_RETURN(lhs, expr) \
  AIRLOCK_ASSIGN_OR_RETURN_IMPL_(AIRLOCK_CONCAT_(airlock_result_, __LINE__), lhs, expr)
#define AIRLOCK_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
