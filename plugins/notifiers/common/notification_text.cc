#include "common/notification_text.h"

#include <string_view>

#include "common/text_util.h"

namespace airlock::notifiers {
namespace {

constexpr size_t kShortText = 200;   // names, ids, groups
constexpr size_t kLongText = 1000;   // purpose, reason
constexpr size_t kMaxDatasets = 20;  // named before "and N more"

const Json* Find(const Json& j, std::initializer_list<const char*> path) {
  const Json* at = &j;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

std::string Text(const Json& j, std::initializer_list<const char*> path, size_t max) {
  const Json* v = Find(j, path);
  return v != nullptr && v->is_string() ? CleanText(v->get_ref<const std::string&>(), max) : "";
}

int64_t Integer(const Json& j, std::initializer_list<const char*> path) {
  const Json* v = Find(j, path);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : -1;
}

std::vector<std::string> Names(const Json& j, std::initializer_list<const char*> path) {
  std::vector<std::string> out;
  const Json* v = Find(j, path);
  if (v == nullptr || !v->is_array()) return out;
  for (const Json& item : *v) {
    std::string name;
    if (item.is_string()) {
      name = CleanText(item.get_ref<const std::string&>(), kShortText);
    } else if (item.is_object()) {
      name = Text(item, {"name"}, kShortText);
    }
    if (!name.empty()) out.push_back(std::move(name));
  }
  return out;
}

std::string JoinNames(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > limit) out += " and " + std::to_string(names.size() - limit) + " more";
  return out;
}

bool IsWebLink(std::string_view url) {
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) return false;
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F || c == '<' || c == '>' || c == '"' || c == '|') return false;
  }
  return url.size() <= 2000;
}

std::string Sentence(std::string text) {
  if (!text.empty() && text.back() != '.' && text.back() != '!' && text.back() != '?') {
    text += '.';
  }
  return text;
}

std::string WithoutPeriod(std::string text) {
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

}  // namespace

NotificationText Describe(const sdk::Notification& notification, int64_t now_unix) {
  const Json& doc = notification.document;
  const std::string event = CleanText(notification.event, kShortText);
  const bool to_requester = notification.audience == "requester";

  const std::string request_id = Text(doc, {"request", "id"}, kShortText);
  const std::string subject = Text(doc, {"request", "requester", "subject"}, kShortText);
  const std::string kind = Text(doc, {"request", "requester", "kind"}, kShortText);
  const std::string email = Text(doc, {"request", "requester", "email"}, kShortText);
  const std::vector<std::string> datasets = Names(doc, {"request", "datasets"});
  const std::string purpose = Text(doc, {"request", "purpose"}, kLongText);
  const std::string reason = Text(doc, {"request", "reason"}, kLongText);
  const int64_t window = Integer(doc, {"request", "window_seconds"});
  const std::string not_after_text = Text(doc, {"request", "not_after"}, kShortText);
  const std::optional<int64_t> not_after = ParseTimestamp(not_after_text);
  const std::vector<std::string> groups = Names(doc, {"request", "approval", "groups"});
  const int64_t approvals = Integer(doc, {"request", "approval", "count"});
  const Json* console = Find(doc, {"links", "console"});

  const std::string who = subject.empty() ? "Someone" : subject;
  const std::string what = datasets.empty() ? "data" : JoinNames(datasets, kMaxDatasets);
  // "Your request" to the requester, "alice's request" to anyone else.
  const std::string owner = to_requester ? "Your" : (subject.empty() ? "A" : subject + "'s");
  const std::string ends = not_after ? FormatUtcMinute(*not_after) : not_after_text;
  const std::string not_before_text = Text(doc, {"request", "not_before"}, kShortText);
  const std::optional<int64_t> not_before = ParseTimestamp(not_before_text);
  const std::string starts = not_before ? FormatUtcMinute(*not_before) : not_before_text;
  const std::string approvers = groups.empty() ? "" : JoinNames(groups, kMaxDatasets);

  NotificationText text;
  if (console != nullptr && console->is_string() &&
      IsWebLink(console->get_ref<const std::string&>())) {
    text.link_url = console->get<std::string>();
    text.link_label = "Open in the console";
  }
  const auto with_reason = [&](std::string base) {
    return reason.empty() ? Sentence(base) : Sentence(base + ": " + reason);
  };

  if (event == "request.pending_approval" && !to_requester) {
    std::string asks = who + " asks for ";
    if (window > 0) asks += FormatDuration(window) + " of ";
    asks += "access to " + what;
    if (!purpose.empty()) asks += " for \"" + purpose + "\"";
    text.headline = Sentence(asks);
    text.title = "Approval needed: " + who + " asks for access to " + what;
    if (!text.link_url.empty()) text.link_label = "Review in the console";
  } else if (event == "request.pending_approval") {
    text.headline = Sentence(owner + " request for " + what + " waits for approval" +
                             (approvers.empty() ? "" : " by " + approvers));
  } else if (event == "request.approved" && !starts.empty()) {
    text.headline =
        Sentence(owner + " request for " + what + " was approved; access starts at " + starts);
  } else if (event == "request.approved") {
    text.headline =
        Sentence(owner + " request for " + what + " was approved; the data is being prepared");
  } else if (event == "request.denied") {
    text.headline = with_reason(owner + " request for " + what + " was denied");
  } else if (event == "request.ready") {
    text.headline = Sentence(owner + " access to " + what + " is ready" +
                             (ends.empty() ? "" : " until " + ends));
  } else if (event == "request.expiring") {
    std::string when = "soon";
    if (not_after) {
      const int64_t left = *not_after - now_unix;
      when = left <= 0 ? "now" : "in " + FormatDuration(((left + 59) / 60) * 60);
    }
    text.headline = Sentence(owner + " access to " + what + " ends " + when +
                             (ends.empty() ? "" : " (at " + ends + ")"));
  } else if (event == "request.extension_requested") {
    const int64_t added = Integer(doc, {"request", "extension", "added_seconds"});
    const std::string why = Text(doc, {"request", "extension", "purpose"}, kLongText);
    std::string asks = who + " asks for " + (added > 0 ? FormatDuration(added) : "more time") +
                       " more of access to " + what;
    if (!why.empty()) asks += " for \"" + why + "\"";
    text.headline = Sentence(asks);
    text.title = "Approval needed: " + who + " asks to extend access to " + what;
    if (!text.link_url.empty()) text.link_label = "Review in the console";
  } else if (event == "request.extended") {
    text.headline = Sentence(owner + " access to " + what + " was extended" +
                             (ends.empty() ? "" : " until " + ends));
  } else if (event == "request.extension_denied") {
    text.headline = with_reason(owner + " ask for more time on " + what + " was denied");
  } else if (event == "request.expired") {
    text.headline = Sentence(owner + " access to " + what + " has ended: its window expired");
  } else if (event == "request.revoked") {
    text.headline = with_reason(owner + " access to " + what + " was revoked");
  } else if (event == "request.closed") {
    text.headline = Sentence(owner + " request for " + what + " was closed");
  } else if (event == "request.failed") {
    text.headline = with_reason(owner + " request for " + what + " failed");
  } else {
    // An event this plugin does not know yet still reaches people.
    text.headline =
        Sentence(owner + " request for " + what + ": " + (event.empty() ? "update" : event));
  }
  if (text.title.empty()) text.title = WithoutPeriod(CleanText(text.headline, kShortText));

  // The facts behind the sentence, most useful first.
  if (!subject.empty()) {
    std::string requester = subject;
    if (!kind.empty() || !email.empty()) {
      requester += " (" + kind + (kind.empty() || email.empty() ? "" : ", ") + email + ")";
    }
    text.facts.push_back({"Requester", requester});
  }
  if (!datasets.empty()) text.facts.push_back({"Datasets", JoinNames(datasets, kMaxDatasets)});
  if (!purpose.empty()) text.facts.push_back({"Purpose", purpose});
  if (!reason.empty()) {
    text.facts.push_back(
        {event == "request.pending_approval" ? "Why approval is needed" : "Reason", reason});
  }
  if (!approvers.empty() && event == "request.pending_approval") {
    std::string value = approvers;
    if (approvals > 0) {
      value +=
          " (" + std::to_string(approvals) + " approval" + (approvals == 1 ? "" : "s") + " needed)";
    }
    text.facts.push_back({"Approvers", value});
  }
  if (window > 0) text.facts.push_back({"Window", FormatDuration(window)});
  if (!starts.empty()) text.facts.push_back({"Access starts", starts});
  if (!ends.empty() && event != "request.pending_approval") {
    text.facts.push_back({"Access ends", ends});
  }
  if (!request_id.empty()) text.facts.push_back({"Request", request_id});
  return text;
}

}  // namespace airlock::notifiers
