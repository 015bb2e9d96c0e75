#include "email/recipients.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/text_util.h"

namespace airlock::notifiers::email {
namespace {

std::vector<std::string> Strings(const Json& recipients, const char* key) {
  std::vector<std::string> out;
  if (!recipients.is_object()) return out;
  auto it = recipients.find(key);
  if (it == recipients.end() || !it->is_array()) return out;
  for (const Json& item : *it) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

Result<Recipients> ResolveRecipients(const Json& document, const EmailConfig& config) {
  const Json empty = Json::object();
  auto found = document.find("recipients");
  const Json& recipients = found == document.end() ? empty : *found;

  Recipients out;
  std::set<std::string> seen;
  const auto add = [&](const std::string& address) {
    if (seen.insert(Lower(address)).second) out.addresses.push_back(address);
  };
  for (const std::string& address : Strings(recipients, "emails")) {
    if (IsValidAddress(address)) {
      add(address);
    } else {
      out.unresolved.push_back("'" + CleanText(address, 100) + "' is not a valid address");
    }
  }
  for (const std::string& group : Strings(recipients, "groups")) {
    auto it = config.group_addresses.find(group);
    if (it == config.group_addresses.end() || it->second.empty()) {
      out.unresolved.push_back("group " + CleanText(group, 100) + " has no address");
      continue;
    }
    for (const std::string& address : it->second) add(address);
  }
  for (const std::string& subject : Strings(recipients, "subjects")) {
    auto it = config.subject_addresses.find(subject);
    if (it == config.subject_addresses.end()) {
      out.unresolved.push_back("subject " + CleanText(subject, 100) + " has no address");
      continue;
    }
    add(it->second);
  }
  if (out.addresses.empty()) {
    std::string why = "no e-mail address to send to";
    if (!out.unresolved.empty()) {
      why += ": ";
      for (size_t i = 0; i < out.unresolved.size(); ++i) {
        why += (i > 0 ? "; " : "") + out.unresolved[i];
      }
      why += " (see addresses in the email notifier's configuration)";
    } else {
      why += ": the notification names no recipients";
    }
    return Status::InvalidArgument(why);
  }
  return out;
}

}  // namespace airlock::notifiers::email
