#include "email/config.h"

#include "common/config_util.h"

namespace airlock::notifiers::email {
namespace {

constexpr std::string_view kWhere = "email configuration";

Status ParseAddresses(const Json& j, EmailConfig* c) {
  auto it = j.find("addresses");
  if (it == j.end() || it->is_null()) return Status::Ok();
  const std::string where = std::string(kWhere) + ".addresses";
  if (!it->is_object()) return json_read::Bad(kWhere, "addresses", "must be an object");
  AIRLOCK_RETURN_IF_ERROR(CheckKeys(*it, {"groups", "subjects"}, where));
  if (auto groups = it->find("groups"); groups != it->end() && !groups->is_null()) {
    if (!groups->is_object()) return json_read::Bad(where, "groups", "must be an object");
    for (const auto& [group, list] : groups->items()) {
      std::vector<std::string> addresses;
      AIRLOCK_RETURN_IF_ERROR(
          json_read::StringList(*groups, group, &addresses, true, where + ".groups"));
      for (const std::string& address : addresses) {
        if (!IsValidAddress(address)) {
          return json_read::Bad(where + ".groups", group,
                                "has an invalid e-mail address '" + address + "'");
        }
      }
      c->group_addresses[group] = std::move(addresses);
    }
  }
  if (auto subjects = it->find("subjects"); subjects != it->end() && !subjects->is_null()) {
    if (!subjects->is_object()) return json_read::Bad(where, "subjects", "must be an object");
    for (const auto& [subject, value] : subjects->items()) {
      std::string address;
      AIRLOCK_RETURN_IF_ERROR(
          json_read::String(*subjects, subject, &address, true, where + ".subjects"));
      if (!IsValidAddress(address)) {
        return json_read::Bad(where + ".subjects", subject,
                              "is an invalid e-mail address '" + address + "'");
      }
      c->subject_addresses[subject] = std::move(address);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<EmailConfig> ParseConfig(const Json& j, const sdk::Host& host) {
  if (!j.is_object()) return Status::InvalidArgument(std::string(kWhere) + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(CheckKeys(j,
                                    {"smtp_url", "starttls", "ca_file", "username", "password",
                                     "from", "addresses", "timeout_ms"},
                                    kWhere));
  EmailConfig c;
  c.timeout_ms = kDefaultTimeoutMs;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "smtp_url", &c.smtp_url, true, kWhere));
  AIRLOCK_ASSIGN_OR_RETURN(UrlParts url, ParseUrl(c.smtp_url, std::string(kWhere) + ".smtp_url"));
  if (url.scheme == "smtps") {
    c.implicit_tls = true;
  } else if (url.scheme != "smtp") {
    return json_read::Bad(kWhere, "smtp_url", "must be an smtp:// or smtps:// URL");
  }
  if (url.has_credentials) {
    return json_read::Bad(kWhere, "smtp_url", "must not carry credentials (use username/password)");
  }
  c.host = url.host;

  std::string starttls = "required";
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "starttls", &starttls, false, kWhere));
  if (starttls == "none") {
    if (c.implicit_tls) {
      return json_read::Bad(kWhere, "starttls", "cannot be \"none\" with an smtps:// URL");
    }
    if (!IsLoopbackHost(c.host)) {
      // Mail to a remote server would cross the network in the clear.
      return json_read::Bad(kWhere, "starttls",
                            "may be \"none\" only when the SMTP server is on this host "
                            "(localhost, 127.0.0.0/8 or ::1), not '" +
                                c.host + "'");
    }
    c.starttls_required = false;
  } else if (starttls != "required") {
    return json_read::Bad(kWhere, "starttls", "must be \"required\" or \"none\"");
  }

  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "ca_file", &c.ca_file, false, kWhere));
  if (!c.ca_file.empty()) {
    c.ca_file = host.ResolvePath(c.ca_file);
    AIRLOCK_RETURN_IF_ERROR(CheckCaFile(c.ca_file, kWhere));
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "username", &c.username, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(ReadSecretReference(j, "password", false, &c.password, kWhere));
  if (!c.password.empty() && c.username.empty()) {
    return json_read::Bad(kWhere, "password", "needs a username");
  }
  if (c.username.find_first_of("\r\n") != std::string::npos) {
    return json_read::Bad(kWhere, "username", "must be one line");
  }

  std::string from;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "from", &from, true, kWhere));
  auto mailbox = ParseMailbox(from);
  if (!mailbox) {
    return json_read::Bad(kWhere, "from",
                          "must be an address like \"Airlock <airlock@example.com>\"");
  }
  c.from = std::move(*mailbox);
  AIRLOCK_RETURN_IF_ERROR(ParseAddresses(j, &c));
  AIRLOCK_RETURN_IF_ERROR(ReadBounded(j, "timeout_ms", 1, kMaxTimeoutMs, &c.timeout_ms, kWhere));
  return c;
}

}  // namespace airlock::notifiers::email
