#include "common/transfer_status.h"

#include "common/text_util.h"

namespace airlock::notifiers {
namespace {

constexpr size_t kQuotedBodyBytes = 200;

std::string Detail(CURLcode code, std::string_view detail,
                   const std::vector<std::string_view>& secrets) {
  std::string text(detail);
  for (std::string_view secret : secrets) {
    if (!secret.empty() && text.find(secret) != std::string::npos) text.clear();
  }
  if (text.empty()) text = curl_easy_strerror(code);
  return CleanText(text, 512);
}

}  // namespace

Status StatusForCurl(CURLcode code, std::string_view what, std::string_view detail,
                     const std::vector<std::string_view>& secrets) {
  const std::string where(what);
  const std::string why = Detail(code, detail, secrets);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status::DeadlineExceeded(where + " did not answer in time: " + why);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      // Retrying cannot make an untrusted certificate trusted.
      return Status::PermissionDenied("TLS verification of " + where + " failed: " + why);
    case CURLE_USE_SSL_FAILED:
      // Never fall back to plaintext: a server (or someone in between) that
      // does not offer STARTTLS is refused.
      return Status::PermissionDenied(where +
                                      " does not offer STARTTLS, which is required: " + why);
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
      return Status::PermissionDenied(where + " refused the credentials: " + why);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return Status::InvalidArgument(where + " has an unusable URL: " + why);
    case CURLE_OUT_OF_MEMORY:
      return Status::ResourceExhausted(where + ": out of memory");
    default:
      // Refused or reset connections, DNS failures, broken handshakes, short
      // answers: the receiver may be back later.
      return Status::Unavailable(where + " could not be reached: " + why);
  }
}

Status StatusForHttp(long status, std::string_view what, std::string_view body,
                     long retry_after_s) {
  if (status >= 200 && status <= 299) return Status::Ok();
  std::string message = std::string(what) + " answered HTTP " + std::to_string(status);
  const std::string quoted = CleanText(body, kQuotedBodyBytes);
  if (!quoted.empty()) message += " (" + quoted + ")";
  if (status == 429) {
    if (retry_after_s >= 0) message += "; retry after " + std::to_string(retry_after_s) + " s";
    return Status::ResourceExhausted(message);
  }
  if (status == 408 || status >= 500) return Status::Unavailable(message);
  if (status == 401 || status == 403) return Status::PermissionDenied(message);
  if (status >= 300 && status <= 399) message += "; redirects are not followed";
  return Status::InvalidArgument(message);
}

Status StatusForSmtp(long reply_code, std::string_view what, std::string_view detail) {
  std::string message = std::string(what) + " refused the message";
  if (reply_code > 0) message += " with SMTP " + std::to_string(reply_code);
  const std::string why = CleanText(detail, 512);
  if (!why.empty()) message += ": " + why;
  if (reply_code == 530 || reply_code == 535 || reply_code == 534) {
    return Status::PermissionDenied(message);
  }
  if (reply_code >= 500) return Status::InvalidArgument(message);
  return Status::Unavailable(message);
}

}  // namespace airlock::notifiers
