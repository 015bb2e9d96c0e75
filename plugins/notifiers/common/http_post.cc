#include "common/http_post.h"

#include "common/transfer_status.h"
#include "common/wiped_string.h"

namespace airlock::notifiers {
namespace {

struct Sink {
  std::string* body;
  bool overflow = false;
};

size_t Write(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t bytes = size * count;
  const size_t room = kMaxAnswerBytes - sink->body->size();
  if (bytes > room) {
    sink->body->append(data, room);
    sink->overflow = true;
    return 0;  // stops the transfer: the rest is never read
  }
  sink->body->append(data, bytes);
  return bytes;
}

}  // namespace

Result<HttpAnswer> Post(const HttpPost& post) {
  char error[CURL_ERROR_SIZE];
  AIRLOCK_ASSIGN_OR_RETURN(EasyHandle handle, NewEasyHandle(post.limits, error));
  CURL* h = handle.get();

  SlistHandle headers;
  bool ok = AppendToList(headers, "Content-Type: application/json") &&
            AppendToList(headers, "Expect:");  // no 100-continue round trip
  for (const std::string& line : post.headers) ok = ok && AppendToList(headers, line);
  if (!ok) return Status::ResourceExhausted("out of memory building the request headers");

  HttpAnswer answer;
  Sink sink{&answer.body};
  // The URL may be a secret: this NUL-terminated copy is wiped on return
  // (libcurl keeps its own copy until the handle is cleaned up).
  const WipedString url(post.url);
  ok = curl_easy_setopt(h, CURLOPT_URL, url.c_str()) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, post.protocols) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_POSTFIELDS, post.body.data()) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                              static_cast<curl_off_t>(post.body.size())) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Write) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_USERAGENT, "airlock-notifier/1") == CURLE_OK;
  if (!ok) return Status::Internal("libcurl refused a transfer option");

  const CURLcode code = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  // An answer cut at the bound still has its status; anything else is a
  // transfer failure.
  if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && sink.overflow && status > 0)) {
    std::vector<std::string_view> secrets = post.secrets;
    secrets.push_back(post.url);
    return StatusForCurl(code, post.what, error, secrets);
  }
  answer.status = status;
  curl_off_t retry_after = -1;
  if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0) {
    answer.retry_after_s = static_cast<long>(retry_after);
  }
  return answer;
}

Status PostAndCheck(const HttpPost& post) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpAnswer answer, Post(post));
  return StatusForHttp(answer.status, post.what, answer.body, answer.retry_after_s);
}

}  // namespace airlock::notifiers
