#include "email/smtp_send.h"

#include <algorithm>
#include <cstring>

#include "common/curl_handles.h"
#include "common/transfer_status.h"
#include "common/wiped_string.h"

namespace airlock::notifiers::email {
namespace {

struct Source {
  std::string_view data;
  size_t offset = 0;
};

size_t Read(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<Source*>(user);
  const size_t n = std::min(size * count, source->data.size() - source->offset);
  std::memcpy(buffer, source->data.data() + source->offset, n);
  source->offset += n;
  return n;
}

// Failures that say something about the connection, not about the message.
bool IsTransportFailure(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_USE_SSL_FAILED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
      return true;
    default:
      return false;
  }
}

}  // namespace

Status SendMail(const EmailConfig& config, std::string_view password, const Envelope& envelope,
                std::string_view message) {
  char error[CURL_ERROR_SIZE];
  AIRLOCK_ASSIGN_OR_RETURN(EasyHandle handle,
                           NewEasyHandle({config.ca_file, config.timeout_ms}, error));
  CURL* h = handle.get();

  SlistHandle rcpt;
  for (const std::string& address : envelope.to) {
    if (!AppendToList(rcpt, "<" + address + ">")) {
      return Status::ResourceExhausted("out of memory building the recipient list");
    }
  }
  const std::string from = "<" + envelope.from + ">";
  const long use_ssl =
      config.implicit_tls || config.starttls_required ? CURLUSESSL_ALL : CURLUSESSL_NONE;
  Source source{message};
  bool ok = curl_easy_setopt(h, CURLOPT_URL, config.smtp_url.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps") == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_USE_SSL, use_ssl) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get()) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_READFUNCTION, &Read) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_READDATA, &source) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                              static_cast<curl_off_t>(message.size())) == CURLE_OK;
  // The password is only lent for this transfer: a NUL-terminated copy that
  // is wiped on return (libcurl's own copy goes with the handle).
  const WipedString secret(password);
  if (!config.username.empty()) {
    ok = ok && curl_easy_setopt(h, CURLOPT_USERNAME, config.username.c_str()) == CURLE_OK;
    ok = ok && curl_easy_setopt(h, CURLOPT_PASSWORD, secret.c_str()) == CURLE_OK;
  }
  if (!ok) return Status::Internal("libcurl refused a transfer option");

  const CURLcode code = curl_easy_perform(h);
  if (code == CURLE_OK) return Status::Ok();
  const std::string what = "SMTP server " + config.host;
  long reply = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
  std::vector<std::string_view> secrets;
  if (!password.empty()) secrets.push_back(password);
  if (reply >= 400 && !IsTransportFailure(code)) {
    std::string detail = error;
    if (!password.empty() && detail.find(password) != std::string::npos) detail.clear();
    return StatusForSmtp(reply, what, detail);
  }
  return StatusForCurl(code, what, error, secrets);
}

}  // namespace airlock::notifiers::email
