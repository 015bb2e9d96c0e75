#include "email/address.h"

#include <algorithm>
#include <cstring>

#include "email/message.h"

namespace airlock::notifiers::email {
namespace {

bool IsAtext(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

bool ValidLocalPart(std::string_view local) {
  if (local.empty() || local.size() > 64 || local.front() == '.' || local.back() == '.') {
    return false;
  }
  if (local.find("..") != std::string_view::npos) return false;
  return std::all_of(local.begin(), local.end(), [](char c) { return c == '.' || IsAtext(c); });
}

bool ValidDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253 || domain.front() == '.' || domain.back() == '.' ||
      domain.front() == '-') {
    return false;
  }
  if (domain.find("..") != std::string_view::npos) return false;
  return std::all_of(domain.begin(), domain.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
  });
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

}  // namespace

bool IsValidAddress(std::string_view address) {
  if (address.size() > 254) return false;
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos) return false;
  return ValidLocalPart(address.substr(0, at)) && ValidDomain(address.substr(at + 1));
}

std::string_view DomainOf(std::string_view address) {
  const size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

std::optional<Mailbox> ParseMailbox(std::string_view text) {
  text = Trim(text);
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return std::nullopt;
  }
  Mailbox mailbox;
  const size_t open = text.rfind('<');
  if (open == std::string_view::npos) {
    mailbox.address = std::string(text);
  } else {
    if (text.back() != '>') return std::nullopt;
    mailbox.address = std::string(text.substr(open + 1, text.size() - open - 2));
    std::string_view name = Trim(text.substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
    }
    if (name.find_first_of("\"\\") != std::string_view::npos) return std::nullopt;
    mailbox.display_name = std::string(name);
  }
  if (!IsValidAddress(mailbox.address)) return std::nullopt;
  return mailbox;
}

std::string FormatMailbox(const Mailbox& mailbox) {
  if (mailbox.display_name.empty()) return mailbox.address;
  const std::string& name = mailbox.display_name;
  const bool ascii = std::all_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F;
  });
  if (!ascii) return EncodeHeaderText(name) + " <" + mailbox.address + ">";
  const bool atoms =
      std::all_of(name.begin(), name.end(), [](char c) { return c == ' ' || IsAtext(c); });
  return (atoms ? name : "\"" + name + "\"") + " <" + mailbox.address + ">";
}

}  // namespace airlock::notifiers::email
