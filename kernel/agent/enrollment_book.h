// Who enrolled as each agent, and which link certificate is its current one:
// what every kernel replica must agree on, so that an agent enrolls once and
// links with any replica. A one-machine kernel keeps it in a file in the
// agents' state directory; replicas keep it in their shared PostgreSQL
// database (postgres_enrollment_book.h).
//
// A record holds the SHA-256 of the token the agent enrolled with (a token
// enrolls once), the serial of its current certificate and the one that
// certificate replaced (accepted until the agent has used the new one, should
// it have missed the renewal's answer). Never a token or a key.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::agent {

struct EnrollmentRecord {
  std::string token_sha256;
  std::string serial;
  std::string previous_serial;
  int64_t enrolled_at_us = 0;
};

class EnrollmentBook {
 public:
  virtual ~EnrollmentBook() = default;

  // The record of `agent`, or nullopt when it never enrolled.
  virtual Result<std::optional<EnrollmentRecord>> Find(const std::string& agent) = 0;
  // Records an enrollment, replacing an earlier one made with another token.
  // False (nothing stored) when `record.token_sha256` already enrolled this
  // agent, here or on another replica.
  virtual Result<bool> Enroll(const std::string& agent, const EnrollmentRecord& record) = 0;
  // Makes `serial` the agent's current certificate, the current one its
  // previous, if the current one is still `current_serial`. False when
  // another renewal or enrollment came first.
  virtual Result<bool> Renew(const std::string& agent, const std::string& current_serial,
                             const std::string& serial) = 0;
  // Pins the agent CA every replica must share: records `fingerprint` (of
  // its certificate) when none is recorded, and returns the one recorded.
  virtual Result<std::string> PinCa(const std::string& fingerprint) = 0;
  // Where the book is, for messages ("file ...", "postgres ...").
  virtual std::string Describe() const = 0;
};

// The one-machine book: <dir>/enrollments.json (0600), the CA pinned in
// memory only (one kernel has one CA).
std::unique_ptr<EnrollmentBook> OpenFileEnrollmentBook(const std::string& dir);

// A one-machine kernel becoming a replica: carries the enrollments of
// <dir>/enrollments.json into `into` (an agent `into` already holds keeps
// its record there), then renames the file to enrollments.json.imported.
// The agents imported; none when there is no file. FailedPrecondition,
// naming the file, when it is malformed (nothing is renamed).
Result<std::vector<std::string>> ImportEnrollmentFile(const std::string& dir, EnrollmentBook& into);

}  // namespace airlock::agent
