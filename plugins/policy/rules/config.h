// The rules policy document (version 1) and its validation. Parsing checks
// the whole document before anything is used: unknown keys, unknown effects,
// bad row_filter ops, unknown mask functions and out-of-range numbers are
// InvalidArgument naming the path ("rules[2].approval.count must be >= 1").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "time_window.h"

namespace airlock::policy::rules {

inline constexpr int64_t kDefaultMaxWindowSeconds = 3600;
// A longer minimum could not be met: the kernel bounds an ask's purpose.
inline constexpr int64_t kMaxPurposeMinLength = 1000;

// Which principals a rule applies to. `users` and `groups` are alternatives
// (either may match); `kinds` and `tenants` further restrict. Empty lists do
// not restrict, so an empty matcher matches every principal.
struct SubjectMatcher {
  std::vector<std::string> users;
  std::vector<std::string> groups;
  std::vector<std::string> tenants;
  uint32_t kinds = 0;  // bit (1 << PrincipalKind) per allowed kind; 0 = any

  bool Matches(const Principal& principal) const;
};

struct Rule {
  std::string name;
  bool deny = false;
  SubjectMatcher subjects;
  std::vector<std::string> datasets;  // dataset names; "*" = every dataset
  std::vector<std::string> tags;      // or: datasets carrying any of these tags
  std::vector<std::string> purposes;  // empty = any purpose
  std::optional<int64_t> max_window_seconds;
  std::optional<int64_t> purpose_min_length;  // the ask must say why, at least this long
  std::optional<ApprovalRequirement> approval;
  std::map<std::string, DatasetScope> obligations;  // by dataset name, or "*" for the rest
  std::optional<TimeWindow> when;                   // the rule applies only inside this window

  bool PurposeFits(const std::string& purpose) const;
  // The obligations this rule imposes on `dataset`, or null.
  const DatasetScope* ObligationsFor(const std::string& dataset) const;
};

struct PolicyDocument {
  int64_t version = 1;
  int64_t default_max_window_seconds = kDefaultMaxWindowSeconds;
  std::vector<Rule> rules;
};

// Zone files named by "when" windows are read from `zoneinfo_dir`.
Result<PolicyDocument> ParsePolicy(const Json& document,
                                   const std::string& zoneinfo_dir = TimeZone::DefaultDirectory());

}  // namespace airlock::policy::rules
