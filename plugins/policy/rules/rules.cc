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
}

}  // namespace

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
        by_name_[name].push_back(i);
      }
    }
    if (all) all_datasets_.push_back(i);
    for (const auto& tag : rule.tags) by_tag_[tag].push_back(i);
  }
}

Result<std::shared_ptr<const CompiledPolicy>> CompiledPolicy::Compile(const Json& document) {
  AIRLOCK_ASSIGN_OR_RETURN(PolicyDocument doc, ParsePolicy(document));
  return std::shared_ptr<const CompiledPolicy>(new CompiledPolicy(std::move(doc)));
}

void CompiledPolicy::Candidates(const std::string& dataset, const std::vector<std::string>& tags,
                                std::vector<uint32_t>* out) const {
  if (auto it = by_name_.find(dataset); it != by_name_.end()) {
    out->insert(out->end(), it->second.begin(), it->second.end());
  }
  for (const auto& tag : tags) {
    if (auto it = by_tag_.find(tag); it != by_tag_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
    }
  }
  out->insert(out->end(), all_datasets_.begin(), all_datasets_.end());
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
}

Decision CompiledPolicy::Evaluate(const PolicyInput& input) const {
  Decision decision;
  decision.effect = Effect::kDeny;
  const Principal& who = input.principal;
  const AccessRequest& request = input.request;
  if (request.datasets.empty()) {
    decision.reason = "the request names no datasets";
    return decision;
  }

  // Whether each rule applies to this principal and purpose, computed once.
  enum : uint8_t { kUnknown, kApplies, kSkip };
  std::vector<uint8_t> applies(doc_.rules.size(), kUnknown);
  auto rule_applies = [&](uint32_t i) {
    if (applies[i] == kUnknown) {
      const Rule& r = doc_.rules[i];
      applies[i] = r.subjects.Matches(who) && r.PurposeFits(request.purpose) ? kApplies : kSkip;
    }
    return applies[i] == kApplies;
  };

  struct Coverage {
    const std::string* dataset;
    std::vector<uint32_t> rules;  // matching allow rules, document order
  };
  static const std::vector<std::string> kNoTags;
  std::vector<Coverage> coverage;
  coverage.reserve(request.datasets.size());
  std::vector<uint32_t> candidates;
  uint32_t deny_rule = std::numeric_limits<uint32_t>::max();
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
    Candidates(dataset, *tags, &candidates);
    Coverage cov{&dataset, {}};
    for (uint32_t i : candidates) {
      if (!rule_applies(i)) continue;
      if (doc_.rules[i].deny) {
        if (i < deny_rule) {
          deny_rule = i;
          denied_dataset = &dataset;
        }
      } else {
        cov.rules.push_back(i);
      }
    }
    coverage.push_back(std::move(cov));
  }

  if (denied_dataset != nullptr) {
    const Rule& rule = doc_.rules[deny_rule];
    decision.rule = rule.name;
    decision.reason =
        "rule '" + rule.name + "' denies " + who.subject + " access to " + *denied_dataset;
    return decision;
  }
  for (const Coverage& cov : coverage) {
    if (cov.rules.empty()) {
      decision.reason = "no rule allows " + who.subject + " to read " + *cov.dataset;
      return decision;
    }
  }

  // Every dataset is covered: merge what the covering rules require.
  std::vector<bool> used(doc_.rules.size(), false);
  int64_t max_window = std::numeric_limits<int64_t>::max();
  bool needs_approval = false;
  ApprovalRequirement approval;
  approval.count = 0;
  std::vector<std::string> approving_rules;
  for (const Coverage& cov : coverage) {
    DatasetScope merged;
    bool columns_restricted = false;
    std::vector<std::string> restricting_rules;
    for (uint32_t i : cov.rules) {
      const Rule& rule = doc_.rules[i];
      if (!used[i]) {
        used[i] = true;
        max_window =
            std::min(max_window, rule.max_window_seconds.value_or(doc_.default_max_window_seconds));
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
      if (const DatasetScope* scope = rule.ObligationsFor(*cov.dataset)) {
        if (!scope->columns.empty()) restricting_rules.push_back(rule.name);
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
    decision.obligations[*cov.dataset] = std::move(merged);
  }

  std::vector<std::string> used_names;
  for (uint32_t i = 0; i < doc_.rules.size(); ++i) {
    if (used[i]) used_names.push_back(doc_.rules[i].name);
  }
  decision.rule = JoinNames(used_names);
  decision.max_window_seconds = max_window;
  if (needs_approval) {
    decision.effect = Effect::kNeedsApproval;
    decision.approval = std::move(approval);
    decision.reason = "approval by " + std::to_string(decision.approval.count) + " of " +
                      JoinNames(decision.approval.groups) + " required by " +
                      JoinNames(approving_rules);
  } else {
    decision.effect = Effect::kAllow;
    decision.reason = "allowed by " + decision.rule;
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
