#include "kernel/audit/audit_search.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "kernel/common/rfc3339.h"

namespace airlock {

using nlohmann::json;

namespace {

// Records read from the log per call: enough to fill most pages at once.
constexpr size_t kReadBatch = 512;

std::string_view StringField(const json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_string() ? std::string_view(it->get_ref<const std::string&>())
                                               : std::string_view();
}

// Who the record says acted: the asker ("principal") or whoever moved the
// request on ("actor").
bool ActedIn(const json& record, std::string_view subject) {
  for (const char* key : {"principal", "actor"}) {
    auto it = record.find(key);
    if (it != record.end() && it->is_object() && StringField(*it, "subject") == subject) {
      return true;
    }
  }
  return false;
}

bool Contains(const json& list, std::string_view value) {
  return list.is_array() && std::any_of(list.begin(), list.end(), [&](const json& item) {
           return item.is_string() && item.get_ref<const std::string&>() == value;
         });
}

// One search's filters over records, with the facts of the requests it met.
class Matcher {
 public:
  Matcher(const AuditSearchQuery& query, const AuditSearchScope& scope)
      : query_(query), scope_(scope) {}

  // Whether `record` is one the caller may see and the query asks for.
  Result<bool> Matches(const json& record) {
    if (!AuditEventMatches(query_.events, StringField(record, "event"))) return false;
    if (scope_.tenant && StringField(record, "tenant") != *scope_.tenant) return false;
    const std::string_view request_id = StringField(record, "request_id");
    if (!query_.request_id.empty() && request_id != query_.request_id) return false;
    const bool needs_facts = !scope_.sees_everything || !query_.subject.empty() ||
                             (!query_.dataset.empty() && !record.contains("datasets"));
    const AuditRequestFacts* facts = nullptr;
    if (needs_facts && !request_id.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(facts, Facts(std::string(request_id)));
    }
    if (!scope_.sees_everything && (facts == nullptr || !facts->visible)) return false;
    if (!query_.subject.empty() && !ActedIn(record, query_.subject) &&
        (facts == nullptr || facts->requester != query_.subject)) {
      return false;
    }
    if (!query_.dataset.empty()) {
      // The ask's own record names its datasets; others take the request's.
      const bool named =
          record.contains("datasets")
              ? Contains(record["datasets"], query_.dataset)
              : facts != nullptr && std::find(facts->datasets.begin(), facts->datasets.end(),
                                              query_.dataset) != facts->datasets.end();
      if (!named) return false;
    }
    return true;
  }

 private:
  Result<const AuditRequestFacts*> Facts(const std::string& id) {
    auto it = facts_.find(id);
    if (it == facts_.end()) {
      AIRLOCK_ASSIGN_OR_RETURN(auto found, scope_.lookup(id));
      it = facts_.emplace(id, std::move(found)).first;
    }
    return it->second ? &*it->second : nullptr;
  }

  const AuditSearchQuery& query_;
  const AuditSearchScope& scope_;
  std::unordered_map<std::string, std::optional<AuditRequestFacts>> facts_;
};

}  // namespace

bool AuditEventMatches(const std::vector<std::string>& patterns, std::string_view event) {
  if (patterns.empty()) return true;
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
    if (pattern.size() >= 2 && pattern.ends_with(".*")) {
      return event.starts_with(std::string_view(pattern).substr(0, pattern.size() - 1));
    }
    return event == pattern;
  });
}

Result<AuditSearchPage> SearchAudit(const AuditLog& log, const AuditSearchQuery& query,
                                    const AuditSearchScope& scope) {
  AuditSearchPage page;
  Matcher matcher(query, scope);
  std::optional<uint64_t> position = query.resume;
  if (position && *position == 0) return page;  // a finished search's end
  while (true) {
    const size_t budget_left = scope.scan_budget - page.scanned;
    AIRLOCK_ASSIGN_OR_RETURN(auto batch,
                             log.ReadBackward(position, std::min(kReadBatch, budget_left)));
    if (batch.empty()) {
      page.next.reset();  // the start of the log: nothing older
      return page;
    }
    for (AuditRecordAt& at : batch) {
      ++page.scanned;
      position = at.before;
      const std::optional<int64_t> written = ParseRfc3339Micros(StringField(at.record, "ts"));
      if (query.since_us > 0 && written && *written < query.since_us - kAuditClockSlackUs) {
        page.next.reset();  // everything further back is older still
        return page;
      }
      const bool in_time = !written || ((query.since_us == 0 || *written >= query.since_us) &&
                                        (query.until_us == 0 || *written < query.until_us));
      if (in_time) {
        AIRLOCK_ASSIGN_OR_RETURN(const bool matches, matcher.Matches(at.record));
        if (matches) page.records.push_back(std::move(at.record));
      }
      if (page.records.size() >= query.limit || page.scanned >= scope.scan_budget) {
        // 0 is where the log starts: no page after it.
        page.next = at.before == 0 ? std::nullopt : std::optional<uint64_t>(at.before);
        return page;
      }
    }
  }
}

}  // namespace airlock
