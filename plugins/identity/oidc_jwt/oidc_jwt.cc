#include "oidc_jwt.h"

#include <openssl/err.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "base64url.h"
#include "claims.h"
#include "reasons.h"
#include "signature.h"

namespace airlock::identity::oidc_jwt {
namespace {

// A kid quoted in the log is cut here (it comes from an unauthenticated caller).
constexpr size_t kMaxLoggedKidBytes = 128;

bool IsSpace(char c) {
  return c == ' ' || c == '\t';
}

// The token of an `Authorization: Bearer <token>` value (scheme compared
// case-insensitively, RFC 7235); empty when it is not a bearer credential.
std::string_view BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || !IsSpace(value[kScheme.size()])) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = value[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kScheme[i]) return {};
  }
  std::string_view token = value.substr(kScheme.size());
  while (!token.empty() && IsSpace(token.front())) token.remove_prefix(1);
  while (!token.empty() && IsSpace(token.back())) token.remove_suffix(1);
  return token;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Clears OpenSSL's per-thread error queue on every exit, so a refused token
// leaves nothing behind for the next TLS call on this thread.
struct ClearOpensslErrors {
  ~ClearOpensslErrors() { ERR_clear_error(); }
};

Result<Json> ParseSegment(std::string_view segment, const char* what) {
  auto bytes = Base64UrlDecode(segment);
  if (!bytes) return Refuse(kMalformed, std::string(what) + " is not base64url");
  Json j = Json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Refuse(kMalformed, std::string(what) + " is not a JSON object");
  }
  return j;
}

// A NumericDate claim (RFC 7519 §2) in seconds; nullopt when absent.
Result<std::optional<double>> TimeClaim(const Json& payload, const char* name) {
  auto it = payload.find(name);
  if (it == payload.end()) return std::optional<double>();
  if (!it->is_number() || !std::isfinite(it->get<double>())) {
    return Refuse(kBadClaim, std::string(name) + " must be a number of seconds");
  }
  return std::optional<double>(it->get<double>());
}

}  // namespace

OidcJwt::OidcJwt(OidcJwtConfig config, sdk::Host host, std::unique_ptr<JwksSource> source)
    : config_(std::move(config)),
      host_(std::move(host)),
      cache_(
          std::move(source), config_.jwks, [this] { return NowMicros(); }, host_) {}

Result<std::unique_ptr<OidcJwt>> OidcJwt::Create(const Json& config, const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(OidcJwtConfig parsed, ParseConfig(config, host));
  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<JwksSource> source, MakeJwksSource(parsed.jwks));
  const bool from_file = !parsed.jwks.file.empty();
  std::unique_ptr<OidcJwt> provider(new OidcJwt(std::move(parsed), host, std::move(source)));
  JwksCache::Snapshot keys = provider->cache_.Keys();
  if (from_file) {
    // A local file is configuration: a broken one is an error now.
    if (!keys.last_error.empty()) return Status::InvalidArgument("jwks_file: " + keys.last_error);
    if (keys.keys->keys.empty()) {
      return Status::InvalidArgument("jwks_file holds no usable verification key");
    }
  }
  return provider;
}

int64_t OidcJwt::NowMicros() const {
  const int64_t host_now = host_.NowMicros();
  if (host_now != 0) return host_now;
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<Principal> OidcJwt::Authenticate(const sdk::HttpRequestView& request) {
  const std::string_view header = request.Header("authorization");
  if (header.empty()) return Status::NotApplicable("no Authorization header");
  const std::string_view token = BearerToken(header);
  if (token.empty()) return Status::NotApplicable("not a bearer credential");
  if (std::count(token.begin(), token.end(), '.') < 2) {
    return Status::NotApplicable("bearer credential is not a JWT");
  }
  return VerifyToken(token);
}

Result<Principal> OidcJwt::VerifyToken(std::string_view token) {
  ClearOpensslErrors clear_errors;
  if (token.size() > config_.max_token_bytes) {
    return Refuse(kMalformed,
                  "token exceeds " + std::to_string(config_.max_token_bytes) + " bytes");
  }
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos ||
      token.find('.', second + 1) != std::string_view::npos) {
    return Refuse(kMalformed, "a JWT has exactly three segments (encrypted JWTs are not accepted)");
  }
  const std::string_view header_b64 = token.substr(0, first);
  const std::string_view payload_b64 = token.substr(first + 1, second - first - 1);
  const std::string_view signature_b64 = token.substr(second + 1);

  // --- header: algorithm and key choice -------------------------------------
  AIRLOCK_ASSIGN_OR_RETURN(Json header, ParseSegment(header_b64, "header"));
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) {
    return Refuse(kMalformed, "header has no alg");
  }
  const std::string alg_name = alg_it->get<std::string>();
  if (EqualsIgnoreCase(alg_name, "none")) {
    return Refuse(kAlgNone, "unsigned tokens are never accepted");
  }
  if (IsHmacAlgorithmName(alg_name)) {
    return Refuse(kAlgMismatch, alg_name +
                                    " is a shared-secret algorithm; this provider verifies only "
                                    "public-key signatures");
  }
  const std::optional<Algorithm> alg = ParseAlgorithm(alg_name);
  if (!alg) return Refuse(kAlgMismatch, "algorithm '" + alg_name + "' is not supported");
  if (std::find(config_.algorithms.begin(), config_.algorithms.end(), *alg) ==
      config_.algorithms.end()) {
    return Refuse(kAlgMismatch, "algorithm " + alg_name + " is not allowed by configuration");
  }
  if (header.contains("crit")) {
    return Refuse(kMalformed, "critical header extensions are not supported");
  }
  std::string kid;
  if (auto it = header.find("kid"); it != header.end()) {
    if (!it->is_string()) return Refuse(kMalformed, "header kid must be a string");
    kid = it->get<std::string>();
  }

  auto signature = Base64UrlDecode(signature_b64);
  if (!signature || signature->empty()) return Refuse(kMalformed, "signature is not base64url");
  auto payload_bytes = Base64UrlDecode(payload_b64);
  if (!payload_bytes) return Refuse(kMalformed, "payload is not base64url");

  // --- key lookup (refreshing once on an unknown kid) ------------------------
  auto candidates = [&](const KeySet& set) {
    std::vector<const Jwk*> found;
    if (!kid.empty()) {
      if (const Jwk* k = set.FindByKid(kid)) found.push_back(k);
    } else {
      for (const auto& k : set.keys) {
        if (KeyMismatch(k, *alg).empty()) found.push_back(&k);
      }
    }
    return found;
  };
  JwksCache::Snapshot keys = cache_.Keys();
  std::vector<const Jwk*> usable = candidates(*keys.keys);
  if (usable.empty()) {
    keys = cache_.Refresh();
    usable = candidates(*keys.keys);
  }
  if (usable.empty()) {
    // Where the keys come from (a file path, a URL) and why they could not be
    // read is for the operator's log; the unauthenticated caller only learns
    // that no key fits.
    if (keys.keys->keys.empty() && !keys.last_error.empty()) {
      host_.Warn(std::string(kJwksUnavailable) + ": no verification keys: " + keys.last_error);
      return Refuse(kJwksUnavailable, "no verification keys are available; try again later");
    }
    host_.Warn(std::string(kUnknownKid) + ": " +
               (kid.empty() ? "token names no kid and no key fits " + alg_name
                            : "no key with kid '" + kid.substr(0, kMaxLoggedKidBytes) + "' in " +
                                  cache_.source().Describe()));
    return Refuse(kUnknownKid, kid.empty() ? "the token names no kid and no key fits " + alg_name
                                           : "no verification key matches the token's kid");
  }
  if (!kid.empty()) {
    const std::string mismatch = KeyMismatch(*usable.front(), *alg);
    if (!mismatch.empty()) return Refuse(kAlgMismatch, "kid '" + kid + "': " + mismatch);
  }

  const std::string_view signing_input = token.substr(0, second);
  bool verified = false;
  for (const Jwk* key : usable) {
    if (VerifySignature(*alg, key->key.get(), signing_input, *signature)) {
      verified = true;
      break;
    }
  }
  if (!verified) return Refuse(kBadSignature, "signature does not verify");

  // --- claims (only now: they are authentic) --------------------------------
  Json payload = Json::parse(*payload_bytes, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded() || !payload.is_object()) {
    return Refuse(kMalformed, "payload is not a JSON object");
  }

  auto iss = payload.find("iss");
  if (iss == payload.end() || !iss->is_string()) return Refuse(kWrongIssuer, "token has no iss");
  if (iss->get_ref<const std::string&>() != config_.issuer) {
    return Refuse(kWrongIssuer, "token was issued by another issuer");
  }

  bool audience_ok = false;
  auto aud = payload.find("aud");
  auto accepted = [&](const Json& v) {
    return v.is_string() && std::find(config_.audiences.begin(), config_.audiences.end(),
                                      v.get_ref<const std::string&>()) != config_.audiences.end();
  };
  if (aud != payload.end()) {
    if (aud->is_array()) {
      audience_ok = std::any_of(aud->begin(), aud->end(), accepted);
    } else {
      audience_ok = accepted(*aud);
    }
  }
  if (!audience_ok) return Refuse(kWrongAudience, "token is not meant for this audience");

  const double now = static_cast<double>(NowMicros()) / 1e6;
  const double skew = static_cast<double>(config_.clock_skew_seconds);
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<double> exp, TimeClaim(payload, "exp"));
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<double> nbf, TimeClaim(payload, "nbf"));
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<double> iat, TimeClaim(payload, "iat"));
  if (!exp && config_.require_exp) return Refuse(kMissingClaim, "token has no exp");
  if (exp && now >= *exp + skew) return Refuse(kExpired, "token has expired");
  if (nbf && now + skew < *nbf) return Refuse(kNotYetValid, "token is not valid yet (nbf)");
  if (iat && now + skew < *iat) return Refuse(kNotYetValid, "token was issued in the future (iat)");

  AIRLOCK_ASSIGN_OR_RETURN(Principal principal, MapPrincipal(payload, config_.claims));
  principal.attributes["issuer"] = config_.issuer;
  return principal;
}

}  // namespace airlock::identity::oidc_jwt
