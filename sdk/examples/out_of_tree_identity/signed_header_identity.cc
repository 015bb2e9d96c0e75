// "signed-header": an identity provider for callers that a trusted component
// (a reverse proxy, a job runner) vouches for with a short-lived token signed
// by HMAC-SHA256 under a key the operator shares with that component.
// Written only against the installed SDK headers; it shows the identity
// contract: "not applicable" without its credential, "unauthenticated" with
// a bad one, a principal with a good one, and a configuration read through
// airlock/cpp/config_read.hpp with the key held as a secret reference.
//
// Configuration:
//   {"key_secret": "env:NAME" | "file:/path",  required; at least 32 bytes once resolved
//    "audience": "<this deployment>",           required; the token's "aud" must equal it
//    "header": "X-Airlock-Signed",              the request header carrying the token
//    "max_lifetime_seconds": 3600,              1..86400: a token may not outlive now + this
//    "leeway_seconds": 30}                      0..300: clock skew tolerated on "exp"
// Token: <payload>.<signature>, both base64url without padding. The payload
// is the JSON {"sub", "aud", "exp" (Unix seconds), "groups"?: [], "kind"?};
// the signature is HMAC-SHA256(key, <payload> as sent).
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <airlock/cpp/base64url.hpp>
#include <airlock/cpp/config_read.hpp>
#include <airlock/cpp/plugin.hpp>

namespace signed_header {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace config_read = airlock::sdk::config_read;
namespace json_read = airlock::json_read;

constexpr std::string_view kWhere = "signed-header configuration";
constexpr size_t kMinKeyBytes = 32;
constexpr size_t kMaxTokenBytes = 8192;
constexpr size_t kSignatureBytes = 32;  // SHA-256

// What the configuration says; the key itself only as a reference.
struct Settings {
  std::string key_secret;
  std::string audience;
  std::string header = "X-Airlock-Signed";
  int64_t max_lifetime_seconds = 3600;
  int64_t leeway_seconds = 30;
};

bool IsHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

bool SameHeader(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Every error names the key and never quotes a value.
Result<Settings> ReadSettings(const Json& config) {
  if (!config.is_object()) {
    return Status::InvalidArgument(std::string(kWhere) + " must be a JSON object");
  }
  AIRLOCK_RETURN_IF_ERROR(config_read::KnownKeys(
      config, {"key_secret", "audience", "header", "max_lifetime_seconds", "leeway_seconds"},
      kWhere));
  Settings s;
  AIRLOCK_RETURN_IF_ERROR(
      config_read::SecretReference(config, "key_secret", &s.key_secret, true, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "audience", &s.audience, true, kWhere));
  if (s.audience.empty()) return json_read::Bad(kWhere, "audience", "must not be empty");
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "header", &s.header, false, kWhere));
  if (!IsHeaderName(s.header)) {
    return json_read::Bad(kWhere, "header", "must be a header name (letters, digits, '-')");
  }
  AIRLOCK_RETURN_IF_ERROR(config_read::Bounded(config, "max_lifetime_seconds", 1, 86400,
                                               &s.max_lifetime_seconds, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      config_read::Bounded(config, "leeway_seconds", 0, 300, &s.leeway_seconds, kWhere));
  return s;
}

// The key, lent by the host; it wipes it when released.
Result<airlock::sdk::SecretBytes> ResolveKey(const Settings& settings,
                                             const airlock::sdk::Host& host) {
  auto key = host.ResolveSecret(settings.key_secret);
  if (!key.ok()) return key.status().WithContext(std::string(kWhere) + ".key_secret");
  if (key->view().size() < kMinKeyBytes) {
    return json_read::Bad(kWhere, "key_secret",
                          "resolves to fewer than " + std::to_string(kMinKeyBytes) + " bytes");
  }
  return key;
}

class SignedHeaderProvider : public airlock::sdk::IdentityProvider {
 public:
  static Result<std::unique_ptr<SignedHeaderProvider>> Create(const Json& config,
                                                              const airlock::sdk::Host& host) {
    AIRLOCK_ASSIGN_OR_RETURN(Settings settings, ReadSettings(config));
    AIRLOCK_ASSIGN_OR_RETURN(airlock::sdk::SecretBytes key, ResolveKey(settings, host));
    return std::unique_ptr<SignedHeaderProvider>(
        new SignedHeaderProvider(std::move(settings), std::move(key), host));
  }

  // airlockd check-config: what Create would refuse, nothing kept.
  static Status CheckConfig(const Json& config, const airlock::sdk::Host& host) {
    AIRLOCK_ASSIGN_OR_RETURN(Settings settings, ReadSettings(config));
    return ResolveKey(settings, host).status();
  }

  // Thread-safe: reads only what Create set.
  Result<airlock::Principal> Authenticate(const airlock::sdk::HttpRequestView& request) override {
    std::string_view token;
    size_t seen = 0;
    for (const auto& [name, value] : request.headers) {
      if (SameHeader(name, settings_.header)) {
        token = value;
        ++seen;
      }
    }
    if (seen == 0) return Status::NotApplicable("no " + settings_.header + " header");
    if (seen > 1) return Refused("more than one " + settings_.header + " header");
    if (token.empty() || token.size() > kMaxTokenBytes) {
      return Refused("the token is empty or longer than " + std::to_string(kMaxTokenBytes) +
                     " bytes");
    }
    const size_t dot = token.find('.');
    if (dot == std::string_view::npos || dot == 0 ||
        token.find('.', dot + 1) != std::string_view::npos) {
      return Refused("the token is not <payload>.<signature>");
    }
    const std::string_view payload = token.substr(0, dot);
    if (!SignatureHolds(payload, token.substr(dot + 1))) {
      return Refused("the signature does not verify");
    }

    // Signed by the key: now the claims are worth reading.
    const auto decoded = airlock::sdk::Base64UrlDecode(payload);
    const Json claims = decoded ? Json::parse(*decoded, nullptr, false) : Json();
    if (!claims.is_object()) return Refused("the payload is not a JSON object");
    airlock::Principal principal;
    std::string audience, kind;
    int64_t expires = 0;
    for (Status read : {json_read::String(claims, "sub", &principal.subject, true, "token"),
                        json_read::String(claims, "aud", &audience, true, "token"),
                        json_read::Int(claims, "exp", &expires, true, "token"),
                        json_read::StringList(claims, "groups", &principal.groups, false, "token"),
                        json_read::String(claims, "kind", &kind, false, "token")}) {
      if (!read.ok()) return Refused(read.message());
    }
    if (principal.subject.empty()) return Refused("token.sub is empty");
    if (audience != settings_.audience) return Refused("the token is for another audience");
    const int64_t now = host_.NowMicros() / 1'000'000;
    if (expires + settings_.leeway_seconds <= now) return Refused("the token expired");
    if (expires - now > settings_.max_lifetime_seconds) {
      return Refused("the token lives longer than max_lifetime_seconds");
    }
    if (kind.empty()) {
      principal.kind_unsaid = true;  // the kernel decides by the door it came in
    } else if (auto parsed = airlock::ParsePrincipalKind(kind)) {
      principal.kind = *parsed;
    } else {
      return Refused("token.kind must be human, service or agent");
    }
    return principal;
  }

 private:
  SignedHeaderProvider(Settings settings, airlock::sdk::SecretBytes key, airlock::sdk::Host host)
      : settings_(std::move(settings)), key_(std::move(key)), host_(std::move(host)) {}

  static Status Refused(const std::string& why) {
    return Status::Unauthenticated("signed-header: " + why);
  }

  // HMAC-SHA256(key, payload) equals the decoded signature, compared in
  // constant time.
  bool SignatureHolds(std::string_view payload, std::string_view signature) const {
    const auto given = airlock::sdk::Base64UrlDecode(signature);
    if (!given || given->size() != kSignatureBytes) return false;
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    const std::string_view key = key_.view();
    const bool made = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                           reinterpret_cast<const unsigned char*>(payload.data()), payload.size(),
                           expected, &length) != nullptr &&
                      length == kSignatureBytes;
    const bool same = made && CRYPTO_memcmp(expected, given->data(), kSignatureBytes) == 0;
    OPENSSL_cleanse(expected, sizeof expected);
    return same;
  }

  const Settings settings_;
  const airlock::sdk::SecretBytes key_;
  const airlock::sdk::Host host_;
};

}  // namespace signed_header

AIRLOCK_IDENTITY_PLUGIN(signed_header::SignedHeaderProvider, "signed-header", "1.0.0",
                        "Callers vouched for by an HMAC-SHA256 signed header token",
                        R"({"type":"object","required":["key_secret","audience"],"properties":{)"
                        R"("key_secret":{"type":"string"},"audience":{"type":"string"},)"
                        R"("header":{"type":"string"},)"
                        R"("max_lifetime_seconds":{"type":"integer","minimum":1,"maximum":86400},)"
                        R"("leeway_seconds":{"type":"integer","minimum":0,"maximum":300}},)"
                        R"("additionalProperties":false})")
