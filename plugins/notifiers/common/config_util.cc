#include "common/config_util.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "airlock/cpp/config_read.hpp"

namespace airlock::notifiers {

Status CheckKeys(const Json& j, const std::set<std::string>& known, std::string_view where) {
  return sdk::config_read::KnownKeys(j, known, where);
}

Status ReadBounded(const Json& j, std::string_view key, int64_t min, int64_t max, int64_t* out,
                   std::string_view where) {
  return sdk::config_read::Bounded(j, key, min, max, out, where);
}

Status ReadBool(const Json& j, std::string_view key, bool* out, std::string_view where) {
  return sdk::config_read::Bool(j, key, out, where);
}

bool IsSecretReference(std::string_view reference) {
  return (reference.rfind("env:", 0) == 0 && reference.size() > 4) ||
         (reference.rfind("file:", 0) == 0 && reference.size() > 5);
}

Status ReadSecretReference(const Json& j, std::string_view key, bool required, std::string* out,
                           std::string_view where) {
  const Status read = sdk::config_read::SecretReference(j, key, out, required, where);
  if (!read.ok()) out->clear();
  return read;
}

Status CheckCaFile(const std::string& path, std::string_view where) {
  const auto refuse = [&] {
    return Status::InvalidArgument(std::string(where) + ".ca_file '" + path +
                                   "' cannot be loaded as a PEM certificate bundle");
  };
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
  if (!bio) return refuse();
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return refuse();
  return Status::Ok();
}

Result<UrlParts> ParseUrl(std::string_view url, std::string_view what) {
  const auto refuse = [&] {
    return Status::InvalidArgument(std::string(what) + " is not an absolute URL");
  };
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), &curl_url_cleanup);
  if (!handle) return Status::Internal("out of memory");
  const std::string text(url);
  if (text.find_first_of(" \t\r\n") != std::string::npos) return refuse();
  if (curl_url_set(handle.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) return refuse();
  UrlParts parts;
  const auto get = [&](CURLUPart part, std::string* out) {
    char* value = nullptr;
    if (curl_url_get(handle.get(), part, &value, 0) != CURLUE_OK || value == nullptr) return false;
    *out = value;
    curl_free(value);
    return true;
  };
  if (!get(CURLUPART_SCHEME, &parts.scheme) || !get(CURLUPART_HOST, &parts.host)) return refuse();
  std::transform(parts.scheme.begin(), parts.scheme.end(), parts.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (parts.host.size() >= 2 && parts.host.front() == '[' && parts.host.back() == ']') {
    parts.host = parts.host.substr(1, parts.host.size() - 2);
  }
  if (parts.host.empty()) return refuse();
  std::string ignored;
  parts.has_credentials = get(CURLUPART_USER, &ignored) || get(CURLUPART_PASSWORD, &ignored);
  return parts;
}

bool IsLoopbackHost(std::string_view host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, lower.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, lower.c_str(), &v6) == 1) {
    static const in6_addr kLoopback = IN6ADDR_LOOPBACK_INIT;
    return std::equal(std::begin(v6.s6_addr), std::end(v6.s6_addr), std::begin(kLoopback.s6_addr));
  }
  return false;
}

}  // namespace airlock::notifiers
