// The rules policy backend: evaluates an access request against a compiled
// policy document (see README.md for the semantics).
//
// Thread-safety: Evaluate and Reload may be called concurrently. Each
// evaluation uses one immutable CompiledPolicy snapshot; Reload swaps the
// snapshot atomically once the new document has been validated in full.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"

namespace airlock::policy::rules {

// Rules grouped by the principals they name, so a lookup touches only rules
// whose users/groups can match: a rule naming users or groups is filed under
// each of them; a rule naming neither is filed under `anyone` (its kinds and
// tenants are still checked when it is a candidate).
struct SubjectIndex {
  std::unordered_map<std::string, std::vector<uint32_t>> by_user;
  std::unordered_map<std::string, std::vector<uint32_t>> by_group;
  std::vector<uint32_t> anyone;

  void Add(uint32_t rule, const SubjectMatcher& subjects);
  // Appends the rules filed under `who`'s subject, one of its groups, or anyone.
  void Collect(const Principal& who, std::vector<uint32_t>* out) const;
};

// A validated policy document plus indexes from (dataset name | tag | "*")
// and then subject to the rules that mention them. An evaluation costs
// O(candidate rules), not O(rules): 10,000 rules naming other datasets or
// other groups are never looked at.
class CompiledPolicy {
 public:
  static Result<std::shared_ptr<const CompiledPolicy>> Compile(
      const Json& document, const std::string& zoneinfo_dir = TimeZone::DefaultDirectory());

  // Never fails: a request the policy cannot place is denied with a reason.
  Decision Evaluate(const PolicyInput& input) const;

  size_t rule_count() const { return doc_.rules.size(); }

 private:
  explicit CompiledPolicy(PolicyDocument doc);

  // Appends the indexes of rules that may apply to `who` reading `dataset`
  // (by name, by one of `tags`, or through "*") to `out`, sorted (document
  // order) and without duplicates.
  void Candidates(const Principal& who, const std::string& dataset,
                  const std::vector<std::string>& tags, std::vector<uint32_t>* out) const;

  PolicyDocument doc_;
  std::unordered_map<std::string, SubjectIndex> by_name_;
  std::unordered_map<std::string, SubjectIndex> by_tag_;
  SubjectIndex all_datasets_;
};

class RulesPolicy : public sdk::PolicyBackend {
 public:
  static Result<std::unique_ptr<RulesPolicy>> Create(const Json& config, const sdk::Host& host);

  Result<Decision> Evaluate(const PolicyInput& input) override;

  // Validates `config` in full; only then replaces the policy. On failure the
  // previous policy stays in force and the Status says why.
  Status Reload(const Json& config) override;

 private:
  RulesPolicy(std::shared_ptr<const CompiledPolicy> policy, sdk::Host host)
      : host_(std::move(host)), policy_(std::move(policy)) {}

  std::shared_ptr<const CompiledPolicy> Snapshot() const;

  const sdk::Host host_;
  mutable std::mutex mutex_;
  std::shared_ptr<const CompiledPolicy> policy_;  // GUARDED_BY(mutex_)
};

}  // namespace airlock::policy::rules
