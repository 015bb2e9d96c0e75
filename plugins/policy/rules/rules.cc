#include "rules.h"

#include <algorithm>
#include <limits>
#include <string_view>

namespace airlock::policy::rules {
namespace {

// How much a mask hides; when rules disagree on a column the strongest wins.
int MaskStrength(std::string_view function) {
  if (function == "redact") return 3;
  if (function == "hash") return 2;
  if (function == "last4") return 1;
  return 4;  // unreachable: documents are validated; an unknown name is kept, connectors refuse it
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

void AddUnique(const std::string& value, std::vector<std::string>* out) {
  if (std::find(out->begin(), out->end(), value) == out->end()) out->push_back(value);
}

// Folds one rule's obligations for a dataset into `merged`: columns
// intersect, masks unite (strongest wins), row filters concatenate.
void MergeScope(const DatasetScope& scope, bool* columns_restricted, DatasetScope* merged) {
  if (!scope.columns.empty()) {
    if (!*columns_restricted) {
      merged->columns.clear();
      for (const auto& c : scope.columns) AddUnique(c, &merged->columns);
      *columns_restricted = true;
    } else {
      std::erase_if(merged->columns, [&scope](const std::string& c) {
        return std::find(scope.columns.begin(), scope.columns.end(), c) == scope.columns.end();
      });
    }
  }
  for (const auto& [column, function] : scope.masks) {
    auto [it, inserted] = merged->masks.emplace(column, function);
    if (!inserted && MaskStrength(function) > MaskStrength(it->second)) it->second = function;
  }
  merged->row_filter.insert(merged->row_filter.end(), scope.row_filter.begin(),
                            scope.row_filter.end());
  // Any rule that wants the query text kept has it kept.
  merged->audit_query_text = merged->audit_query_text || scope.audit_query_text;
  // Clean rooms: the strictest of them (largest group size, only what every
  // one allows).
  if (scope.aggregate_only) {
    if (!merged->aggregate_only) {
      merged->aggregate_only = scope.aggregate_only;
    } else {
      AggregateOnly& into = *merged->aggregate_only;
      into.min_group_size = std::max(into.min_group_size, scope.aggregate_only->min_group_size);
      const auto keep_common = [](const std::vector<std::string>& other,
                                  std::vector<std::string>* list) {
        std::erase_if(*list, [&other](const std::string& v) {
          return std::find(other.begin(), other.end(), v) == other.end();
        });
      };
      keep_common(scope.aggregate_only->allowed_functions, &into.allowed_functions);
      keep_common(scope.aggregate_only->dimensions, &into.dimensions);
      keep_common(scope.aggregate_only->metrics, &into.metrics);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// SubjectIndex

void SubjectIndex::Add(uint32_t rule, const SubjectMatcher& subjects) {
  if (subjects.users.empty() && subjects.groups.empty()) {
    anyone.push_back(rule);
    return;
  }
  for (const auto& user : subjects.users) {
    auto& list = by_user[user];
    if (list.empty() || list.back() != rule) list.push_back(rule);
  }
  for (const auto& group : subjects.groups) {
    auto& list = by_group[group];
    if (list.empty() || list.back() != rule) list.push_back(rule);
  }
}

void SubjectIndex::Collect(const Principal& who, std::vector<uint32_t>* out) const {
  out->insert(out->end(), anyone.begin(), anyone.end());
  if (!by_user.empty()) {
    if (auto it = by_user.find(who.subject); it != by_user.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
    }
  }
  if (!by_group.empty()) {
    for (const auto& group : who.groups) {
      if (auto it = by_group.find(group); it != by_group.end()) {
        out->insert(out->end(), it->second.begin(), it->second.end());
      }
    }
  }
}

// ---------------------------------------------------------------------------
// CompiledPolicy

CompiledPolicy::CompiledPolicy(PolicyDocument doc) : doc_(std::move(doc)) {
  for (uint32_t i = 0; i < doc_.rules.size(); ++i) {
    const Rule& rule = doc_.rules[i];
    bool all = false;
    for (const auto& name : rule.datasets) {
      if (name == "*") {
        all = true;
      } else {
        by_name_[name].Add(i, rule.subjects);
      }
    }
    if (all) all_datasets_.Add(i, rule.subjects);
    for (const auto& tag : rule.tags) by_tag_[tag].Add(i, rule.subjects);
  }
}

Result<std::shared_ptr<const CompiledPolicy>> CompiledPolicy::Compile(
    const Json& document, const std::string& zoneinfo_dir) {
  AIRLOCK_ASSIGN_OR_RETURN(PolicyDocument doc, ParsePolicy(document, zoneinfo_dir));
  return std::shared_ptr<const CompiledPolicy>(new CompiledPolicy(std::move(doc)));
}

void CompiledPolicy::Candidates(const Principal& who, const std::string& dataset,
                                const std::vector<std::string>& tags,
                                std::vector<uint32_t>* out) const {
  if (auto it = by_name_.find(dataset); it != by_name_.end()) it->second.Collect(who, out);
  if (!by_tag_.empty()) {
    for (const auto& tag : tags) {
      if (auto it = by_tag_.find(tag); it != by_tag_.end()) it->second.Collect(who, out);
    }
  }
  all_datasets_.Collect(who, out);
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
}

namespace {

// Whether a candidate rule applies to this request at this time.
enum class Fit : uint8_t { kNo, kOutsideWindow, kYes };

Fit RuleFits(const Rule& rule, const Principal& who, const AccessRequest& request, int64_t now) {
  if (!rule.subjects.Matches(who) || !rule.PurposeFits(request.purpose)) return Fit::kNo;
  if (!rule.when) return Fit::kYes;
  // Without a clock a window cannot be checked: fail closed (an allow rule
  // does not apply, a deny rule does).
  if (now <= 0) return rule.deny ? Fit::kYes : Fit::kOutsideWindow;
  return rule.when->Contains(now) ? Fit::kYes : Fit::kOutsideWindow;
}

std::string OutsideWindowNote(const Rule& rule, int64_t now) {
  std::string note = "; rule '" + rule.name + "' allows it only " + rule.when->Describe();
  if (now > 0) {
    note += " (it is " + rule.when->LocalTimeAt(now) + " there)";
  } else {
    note += " (the request carries no time)";
  }
  return note;
}

}  // namespace

Decision CompiledPolicy::Evaluate(const PolicyInput& input) const {
  Decision decision;
  decision.effect = Effect::kDeny;
  const Principal& who = input.principal;
  const AccessRequest& request = input.request;
  const int64_t now = input.now_unix_seconds;
  if (request.datasets.empty()) {
    decision.reason = "the request names no datasets";
    return decision;
  }

  struct Coverage {
    const std::string* dataset;
    std::vector<uint32_t> rules;  // applying allow rules, document order
    uint32_t outside_window;      // first allow rule that only missed its window
  };
  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  static const std::vector<std::string> kNoTags;
  std::vector<Coverage> coverage;
  coverage.reserve(request.datasets.size());
  std::vector<uint32_t> candidates;
  uint32_t deny_rule = kNone;
  const std::string* denied_dataset = nullptr;

  for (const std::string& dataset : request.datasets) {
    if (std::any_of(coverage.begin(), coverage.end(),
                    [&](const Coverage& c) { return *c.dataset == dataset; })) {
      continue;
    }
    const std::vector<std::string>* tags = &kNoTags;
    for (const auto& info : input.datasets) {
      if (info.name == dataset) {
        tags = &info.tags;
        break;
      }
    }
    candidates.clear();
    Candidates(who, dataset, *tags, &candidates);
    Coverage cov{&dataset, {}, kNone};
    for (uint32_t i : candidates) {
      const Rule& rule = doc_.rules[i];
      const Fit fit = RuleFits(rule, who, request, now);
      if (fit == Fit::kNo) continue;
      if (rule.deny) {
        if (fit == Fit::kYes && i < deny_rule) {
          deny_rule = i;
          denied_dataset = &dataset;
        }
      } else if (fit == Fit::kYes) {
        cov.rules.push_back(i);
      } else if (cov.outside_window == kNone) {
        cov.outside_window = i;
      }
    }
    coverage.push_back(std::move(cov));
  }

  if (denied_dataset != nullptr) {
    const Rule& rule = doc_.rules[deny_rule];
    decision.rule = rule.name;
    decision.reason =
        "rule '" + rule.name + "' denies " + who.subject + " access to " + *denied_dataset;
    if (rule.when) decision.reason += " during " + rule.when->Describe();
    return decision;
  }
  for (const Coverage& cov : coverage) {
    if (cov.rules.empty()) {
      decision.reason = "no rule allows " + who.subject + " to read " + *cov.dataset;
      if (cov.outside_window != kNone) {
        const Rule& rule = doc_.rules[cov.outside_window];
        decision.reason += " now" + OutsideWindowNote(rule, now);
        decision.rule = rule.name;
      }
      return decision;
    }
  }

  // Every dataset is covered. Rule-level requirements (window, approval)
  // combine over the distinct used rules; obligations combine per dataset.
  std::vector<uint32_t> used;
  for (const Coverage& cov : coverage) used.insert(used.end(), cov.rules.begin(), cov.rules.end());
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());

  int64_t max_window = std::numeric_limits<int64_t>::max();
  const Rule* window_rule = nullptr;
  bool needs_approval = false;
  ApprovalRequirement approval;
  approval.count = 0;
  std::vector<std::string> approving_rules;
  int64_t purpose_min_length = 0;
  const Rule* purpose_rule = nullptr;
  std::vector<std::string> used_names;
  used_names.reserve(used.size());
  for (uint32_t i : used) {
    const Rule& rule = doc_.rules[i];
    used_names.push_back(rule.name);
    const int64_t window = rule.max_window_seconds.value_or(doc_.default_max_window_seconds);
    if (window < max_window) {
      max_window = window;
      window_rule = &rule;
    }
    if (rule.purpose_min_length.value_or(0) > purpose_min_length) {
      purpose_min_length = *rule.purpose_min_length;
      purpose_rule = &rule;
    }
    if (rule.approval) {
      needs_approval = true;
      approving_rules.push_back(rule.name);
      for (const auto& g : rule.approval->groups) AddUnique(g, &approval.groups);
      approval.count = std::max(approval.count, rule.approval->count);
      const int64_t t = rule.approval->timeout_seconds;
      if (t > 0 && (approval.timeout_seconds == 0 || t < approval.timeout_seconds)) {
        approval.timeout_seconds = t;
      }
    }
  }

  std::string scope_note;
  for (const Coverage& cov : coverage) {
    DatasetScope merged;
    bool columns_restricted = false;
    std::vector<std::string> restricting_rules;
    std::vector<std::string> scoping_rules;
    for (uint32_t i : cov.rules) {
      const Rule& rule = doc_.rules[i];
      if (const DatasetScope* scope = rule.ObligationsFor(*cov.dataset)) {
        if (!scope->columns.empty()) restricting_rules.push_back(rule.name);
        scoping_rules.push_back(rule.name);
        MergeScope(*scope, &columns_restricted, &merged);
      }
    }
    if (columns_restricted && merged.columns.empty()) {
      // An empty column list would read as "all columns": refuse instead.
      decision.rule = JoinNames(restricting_rules);
      decision.reason =
          "rules " + decision.rule + " together leave no column of " + *cov.dataset + " readable";
      return decision;
    }
    if (!scoping_rules.empty()) {
      scope_note += "; scope of " + *cov.dataset + " from " + JoinNames(scoping_rules);
    }
    decision.obligations[*cov.dataset] = std::move(merged);
  }

  decision.rule = JoinNames(used_names);
  decision.max_window_seconds = max_window;
  decision.purpose_min_length = purpose_min_length;
  // The reason says which rule imposed what, so a combined decision can be
  // traced back rule by rule.
  std::string window_note = "; window at most " + std::to_string(max_window) + " s";
  if (window_rule != nullptr && used.size() > 1) window_note += " (" + window_rule->name + ")";
  if (needs_approval) {
    decision.effect = Effect::kNeedsApproval;
    decision.approval = std::move(approval);
    decision.reason = "approval by " + std::to_string(decision.approval.count) + " of " +
                      JoinNames(decision.approval.groups) + " required by " +
                      JoinNames(approving_rules) + "; allowed by " + decision.rule;
  } else {
    decision.effect = Effect::kAllow;
    decision.reason = "allowed by " + decision.rule;
  }
  decision.reason += window_note + scope_note;
  if (purpose_rule != nullptr) {
    decision.reason += "; a purpose of at least " + std::to_string(purpose_min_length) +
                       " characters (" + purpose_rule->name + ")";
  }
  return decision;
}

// ---------------------------------------------------------------------------
// RulesPolicy

Result<std::unique_ptr<RulesPolicy>> RulesPolicy::Create(const Json& config,
                                                         const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(auto policy, CompiledPolicy::Compile(config));
  host.Info("policy loaded: " + std::to_string(policy->rule_count()) + " rule(s)");
  return std::unique_ptr<RulesPolicy>(new RulesPolicy(std::move(policy), host));
}

std::shared_ptr<const CompiledPolicy> RulesPolicy::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return policy_;
}

Result<Decision> RulesPolicy::Evaluate(const PolicyInput& input) {
  return Snapshot()->Evaluate(input);
}

Status RulesPolicy::Reload(const Json& config) {
  auto compiled = CompiledPolicy::Compile(config);
  if (!compiled.ok()) {
    // The message names the offending path; it never contains data values.
    host_.Warn("policy reload refused: " + compiled.status().message());
    return compiled.status().WithContext("reload refused, the previous policy stays in force");
  }
  const size_t count = (*compiled)->rule_count();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    policy_ = std::move(compiled).value();
  }
  host_.Info("policy reloaded: " + std::to_string(count) + " rule(s)");
  return Status::Ok();
}

}  // namespace airlock::policy::rules
