#include "common/curl_handles.h"

#include <algorithm>
#include <mutex>

namespace airlock::notifiers {
namespace {

// libcurl's global state, set up once per loaded plugin and torn down when
// the plugin is unloaded (a function-local static's destructor runs at
// dlclose), so nothing it allocated outlives the plugin.
class CurlGlobal {
 public:
  CurlGlobal() : code_(curl_global_init(CURL_GLOBAL_DEFAULT)) {}
  ~CurlGlobal() {
    if (code_ == CURLE_OK) curl_global_cleanup();
  }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
  bool ok() const { return code_ == CURLE_OK; }

 private:
  CURLcode code_;
};

bool GlobalReady() {
  static CurlGlobal global;
  return global.ok();
}

}  // namespace

bool AppendToList(SlistHandle& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  if (grown == nullptr) return false;
  // curl_slist_append returns the head: the same pointer once the list exists.
  if (!list) list.reset(grown);
  return true;
}

int64_t ConnectTimeoutMs(int64_t timeout_ms) {
  return std::min<int64_t>(timeout_ms, 5000);
}

Result<EasyHandle> NewEasyHandle(const TransferLimits& limits, char* error_buffer) {
  if (!GlobalReady()) return Status::Internal("libcurl could not be initialised");
  EasyHandle handle(curl_easy_init());
  if (!handle) return Status::Internal("libcurl could not make a transfer handle");
  CURL* h = handle.get();
  error_buffer[0] = '\0';
  bool ok = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_PROXY, "") == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
  ok = ok &&
       curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(limits.timeout_ms)) == CURLE_OK;
  ok = ok && curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                              static_cast<long>(ConnectTimeoutMs(limits.timeout_ms))) == CURLE_OK;
  if (ok && !limits.ca_file.empty()) {
    ok = curl_easy_setopt(h, CURLOPT_CAINFO, limits.ca_file.c_str()) == CURLE_OK;
  }
  if (!ok) return Status::Internal("libcurl refused a transfer option");
  return handle;
}

}  // namespace airlock::notifiers
