#include "mongo_session.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace airlock::connectors::mongodb {
namespace {

// A NUL-terminated copy of secret bytes for a C API that copies it; wiped on
// destruction. Refuses bytes that contain NUL (they would be truncated).
class CString {
 public:
  explicit CString(std::string_view bytes) {
    if (bytes.size() > kMaxSecretBytes) {
      too_long_ = true;
      bytes = {};
    }
    data_.assign(bytes.size() + 1, '\0');
    if (!bytes.empty()) std::memcpy(data_.data(), bytes.data(), bytes.size());
  }
  ~CString() { OPENSSL_cleanse(data_.data(), data_.size()); }
  CString(const CString&) = delete;
  CString& operator=(const CString&) = delete;
  const char* c_str() const { return data_.data(); }
  bool unusable() const {
    return std::find(data_.begin(), data_.end() - 1, '\0') != data_.end() - 1;
  }

 private:
  static constexpr size_t kMaxSecretBytes = 1u << 20;
  std::vector<char> data_;
  bool too_long_ = false;
};

Status Resolve(const sdk::Host& host, const std::string& reference, const char* what,
               std::vector<sdk::SecretBytes>* keep) {
  auto secret = host.ResolveSecret(reference);
  if (!secret.ok()) {
    return Status(secret.status().code(),
                  std::string(what) + " could not be resolved: " + secret.status().message());
  }
  keep->push_back(std::move(secret).value());
  return Status::Ok();
}

}  // namespace

void EnsureMongocInitialised() {
  static std::once_flag once;
  std::call_once(once, [] {
    mongoc_init();
    // libmongoc logs to stderr by default; every failure the connector acts
    // on comes back as a bson_error_t, so its log lines are dropped.
    mongoc_log_set_handler([](mongoc_log_level_t, const char*, const char*, void*) {}, nullptr);
  });
}

Result<std::string> ValidatePlainUri(const std::string& uri) {
  EnsureMongocInitialised();
  bson_error_t error;
  mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri.c_str(), &error);
  if (parsed == nullptr) {
    // libmongoc may quote the text; quote it only when it holds no user info.
    const bool has_userinfo = uri.find('@') != std::string::npos;
    return Status::InvalidArgument(
        "uri is not a valid MongoDB connection string" +
        (has_userinfo ? std::string() : std::string(": ") + error.message));
  }
  const bool has_password = mongoc_uri_get_password(parsed) != nullptr;
  const char* db = mongoc_uri_get_database(parsed);
  std::string database = db != nullptr ? db : "";
  mongoc_uri_destroy(parsed);
  if (has_password) {
    return Status::InvalidArgument(
        "uri must not contain a password; give username and password_secret instead");
  }
  return database;
}

Result<std::unique_ptr<MongoSession>> MongoSession::Open(const MongoConfig& config,
                                                         const sdk::Host& host) {
  EnsureMongocInitialised();
  std::unique_ptr<MongoSession> s(new MongoSession());
  bson_error_t error;
  if (!config.uri_secret.empty()) {
    AIRLOCK_RETURN_IF_ERROR(Resolve(host, config.uri_secret, "uri_secret", &s->secrets_));
    CString text(s->secrets_.back().view());
    s->uri_ = text.unusable() ? nullptr : mongoc_uri_new_with_error(text.c_str(), &error);
    if (s->uri_ == nullptr) {
      return Status::InvalidArgument("uri_secret does not hold a valid MongoDB connection string");
    }
  } else {
    s->uri_ = mongoc_uri_new_with_error(config.uri.c_str(), &error);
    if (s->uri_ == nullptr) return Status::InvalidArgument("uri is not valid");
  }
  if (!config.username.empty() && !mongoc_uri_set_username(s->uri_, config.username.c_str())) {
    return Status::InvalidArgument("username is not valid UTF-8");
  }
  if (!config.password_secret.empty()) {
    AIRLOCK_RETURN_IF_ERROR(Resolve(host, config.password_secret, "password_secret", &s->secrets_));
    CString password(s->secrets_.back().view());
    if (password.unusable() || !mongoc_uri_set_password(s->uri_, password.c_str())) {
      return Status::InvalidArgument("password_secret holds a value libmongoc cannot use");
    }
  }
  if (!config.auth_source.empty() &&
      !mongoc_uri_set_auth_source(s->uri_, config.auth_source.c_str())) {
    return Status::InvalidArgument("auth_source is not valid");
  }
  if (!config.auth_mechanism.empty() &&
      !mongoc_uri_set_auth_mechanism(s->uri_, config.auth_mechanism.c_str())) {
    return Status::InvalidArgument("auth_mechanism is not valid");
  }
  if (config.tls.enabled) {
    mongoc_uri_set_option_as_bool(s->uri_, MONGOC_URI_TLS, true);
    if (!config.tls.ca_file.empty()) {
      mongoc_uri_set_option_as_utf8(s->uri_, MONGOC_URI_TLSCAFILE,
                                    host.ResolvePath(config.tls.ca_file).c_str());
    }
    if (!config.tls.certificate_key_file.empty()) {
      mongoc_uri_set_option_as_utf8(s->uri_, MONGOC_URI_TLSCERTIFICATEKEYFILE,
                                    host.ResolvePath(config.tls.certificate_key_file).c_str());
    }
    if (!config.tls.certificate_key_password_secret.empty()) {
      AIRLOCK_RETURN_IF_ERROR(Resolve(host, config.tls.certificate_key_password_secret,
                                      "tls.certificate_key_password_secret", &s->secrets_));
      CString password(s->secrets_.back().view());
      if (password.unusable()) {
        return Status::InvalidArgument(
            "tls.certificate_key_password_secret holds a value libmongoc cannot use");
      }
      mongoc_uri_set_option_as_utf8(s->uri_, MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD,
                                    password.c_str());
    }
    if (config.tls.allow_invalid_hostnames) {
      mongoc_uri_set_option_as_bool(s->uri_, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, true);
    }
  }
  s->database_ = config.database;
  if (s->database_.empty()) {
    const char* db = mongoc_uri_get_database(s->uri_);
    s->database_ = db != nullptr ? db : "";
  }
  if (s->database_.empty()) {
    return Status::InvalidArgument("no database: set database or name one in the uri");
  }
  s->client_ = mongoc_client_new_from_uri_with_error(s->uri_, &error);
  if (s->client_ == nullptr) return s->Classify(error, "connecting");
  mongoc_client_set_error_api(s->client_, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_set_appname(s->client_, "airlock-mongodb");
  return s;
}

MongoSession::~MongoSession() {
  if (client_ != nullptr) mongoc_client_destroy(client_);
  if (uri_ != nullptr) mongoc_uri_destroy(uri_);
  secrets_.clear();  // each release wipes
}

std::string MongoSession::Scrub(std::string text) const {
  for (const auto& secret : secrets_) {
    const std::string_view value = secret.view();
    if (value.size() < 4) continue;  // too short to search for without mangling the text
    for (size_t p = text.find(value); p != std::string::npos; p = text.find(value, p)) {
      text.replace(p, value.size(), "<secret>");
    }
  }
  return text;
}

Status MongoSession::Classify(const bson_error_t& error, std::string_view what) const {
  std::string message = std::string(what) + ": " + Scrub(error.message);
  switch (error.domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_STREAM:
      return Status::Unavailable(std::move(message));
    case MONGOC_ERROR_CLIENT:
      if (error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
        return Status::Unauthenticated(std::move(message));
      }
      break;
    case MONGOC_ERROR_SASL:
    case MONGOC_ERROR_SCRAM:
      return Status::Unauthenticated(std::move(message));
    default:
      break;
  }
  switch (error.code) {
    case 18:  // AuthenticationFailed
      return Status::Unauthenticated(std::move(message));
    case 13:    // Unauthorized
    case 8000:  // AtlasError (unauthorized on Atlas)
      return Status::PermissionDenied(std::move(message));
    case 26:  // NamespaceNotFound
      return Status::NotFound(std::move(message));
    case 50:  // MaxTimeMSExpired
      return Status::DeadlineExceeded(std::move(message));
    case 6:      // HostUnreachable
    case 7:      // HostNotFound
    case 89:     // NetworkTimeout
    case 91:     // ShutdownInProgress
    case 189:    // PrimarySteppedDown
    case 10107:  // NotWritablePrimary
    case 11600:  // InterruptedAtShutdown
    case 13435:  // NotPrimaryNoSecondaryOk
      return Status::Unavailable(std::move(message));
    case 2:      // BadValue
    case 9:      // FailedToParse
    case 14:     // TypeMismatch
    case 168:    // InvalidPipelineOperator
    case 40323:  // bad stage
    case 40324:  // unknown stage
      return Status::InvalidArgument(std::move(message));
    default:
      break;
  }
  return Status::Unknown(std::move(message));
}

}  // namespace airlock::connectors::mongodb
