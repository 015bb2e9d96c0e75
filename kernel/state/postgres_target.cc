#include "kernel/state/postgres_target.h"

#include <libpq-fe.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "kernel/common/crypto.h"

namespace airlock::pg {
namespace {

struct OptionsFree {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// libpq's keyword/value quoting: single quotes, backslash escapes.
void AppendPair(std::string& out, std::string_view key, std::string_view value) {
  if (!out.empty()) out += ' ';
  out += key;
  out += "='";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
}

constexpr std::string_view kRedacted = "[redacted]";

// A configured TLS file that cannot be read fails here, naming the key,
// rather than as a connection failure that names neither.
Status CheckReadable(const std::string& path, const char* key) {
  if (path.empty()) return Status::Ok();
  std::ifstream in(path, std::ios::binary);
  char byte = 0;
  if (!in || !in.read(&byte, 1)) {
    const int error = errno;
    return Status::InvalidArgument(std::string("state.tls.") + key + ": cannot read '" + path +
                                   "'" +
                                   (error != 0 ? std::string(": ") + std::strerror(error)
                                               : std::string(": empty or a directory")));
  }
  return Status::Ok();
}

}  // namespace

Result<Target> Target::Parse(const Secret& dsn, const TargetOptions& options) {
  const PostgresTlsSettings& tls = options.tls;
  if (!tls.mode.empty() && tls.mode != "require" && tls.mode != "verify-ca" &&
      tls.mode != "verify-full") {
    return Status::InvalidArgument("state tls mode must be require, verify-ca or verify-full");
  }
  if ((tls.mode == "verify-ca" || tls.mode == "verify-full") && tls.ca_file.empty()) {
    return Status::InvalidArgument("state tls mode " + tls.mode + " needs a ca_file");
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return Status::InvalidArgument("state tls cert_file and key_file go together");
  }
  AIRLOCK_RETURN_IF_ERROR(CheckReadable(tls.ca_file, "ca_file"));
  AIRLOCK_RETURN_IF_ERROR(CheckReadable(tls.cert_file, "cert_file"));
  AIRLOCK_RETURN_IF_ERROR(CheckReadable(tls.key_file, "key_file"));

  // PQconninfoParse wants a NUL-terminated copy; it is wiped at once.
  std::string text(dsn.Reveal());
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, OptionsFree> parsed(PQconninfoParse(text.c_str(), &error));
  SecureWipe(text.data(), text.size());
  if (parsed == nullptr) {
    // libpq's message quotes the offending text: never pass it on.
    if (error != nullptr) PQfreemem(error);
    return Status::InvalidArgument(
        "the state store connection string is malformed (expected key=value pairs or a "
        "postgresql:// URI)");
  }

  std::map<std::string, std::string> values;
  for (const PQconninfoOption* o = parsed.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') values[o->keyword] = o->val;
  }
  if (!tls.mode.empty()) {
    values["sslmode"] = tls.mode;
    if (!tls.ca_file.empty()) values["sslrootcert"] = tls.ca_file;
    if (!tls.cert_file.empty()) {
      values["sslcert"] = tls.cert_file;
      values["sslkey"] = tls.key_file;
    }
  }
  if (!values.count("connect_timeout")) {
    values["connect_timeout"] = std::to_string(options.connect_timeout_seconds);
  }
  if (!values.count("application_name")) values["application_name"] = "airlockd";

  Target target;
  std::string conninfo;
  for (const auto& [key, value] : values) AppendPair(conninfo, key, value);
  target.conninfo_ = Secret(std::move(conninfo));
  if (auto password = values.find("password"); password != values.end()) {
    target.redactions_.emplace_back(std::string(password->second));
  }
  if (!dsn.empty()) target.redactions_.emplace_back(std::string(dsn.Reveal()));
  target.redactions_.emplace_back(std::string(target.conninfo_.Reveal()));

  auto value_of = [&](const char* key, const char* fallback) {
    auto it = values.find(key);
    return it == values.end() ? std::string(fallback) : it->second;
  };
  target.description_ = value_of("user", "(default user)") + "@" +
                        value_of("host", value_of("hostaddr", "(default host)").c_str()) + ":" +
                        value_of("port", "5432") + "/" + value_of("dbname", "(default database)");
  for (auto& [key, value] : values) SecureWipe(value.data(), value.size());
  return target;
}

std::string Target::Redact(std::string message) const {
  for (const Secret& secret : redactions_) {
    const std::string_view needle = secret.Reveal();
    if (needle.empty()) continue;
    for (size_t at = message.find(needle); at != std::string::npos;
         at = message.find(needle, at + kRedacted.size())) {
      message.replace(at, needle.size(), kRedacted);
    }
  }
  // libpq ends its messages with a newline; errors here are one line.
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  for (char& c : message) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return message;
}

Status Target::Failure(std::string_view what, const std::exception& error) const {
  return Status::Unavailable(std::string(what) + " on PostgreSQL " + description_ + ": " +
                             Redact(error.what()));
}

Result<std::unique_ptr<pqxx::connection>> Target::Connect() const {
  try {
    return std::make_unique<pqxx::connection>(std::string(conninfo_.Reveal()));
  } catch (const std::exception& e) {
    return Failure("cannot connect to the state store", e);
  }
}

}  // namespace airlock::pg
