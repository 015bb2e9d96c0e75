// RAII owners for libcurl handles, and the settings every notifier transfer
// shares (TLS verification, timeouts, no signals, no proxy from the
// environment, bounded answers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <curl/curl.h>

#include "airlock/cpp/status.hpp"

namespace airlock::notifiers {

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using SlistHandle = std::unique_ptr<curl_slist, SlistDeleter>;

// Appends `line` to `list`; false when out of memory (the list is kept).
bool AppendToList(SlistHandle& list, const std::string& line);

// What every transfer is given.
struct TransferLimits {
  std::string ca_file;  // PEM bundle; empty = the system trust store
  int64_t timeout_ms = 10000;
};

// A fresh easy handle with the shared settings applied: TLS peer and host
// verification on (with `ca_file` when given), connect and total timeouts,
// no signals (the host is multi-threaded), no redirects, no proxy taken from
// the environment (where a notification goes is the configuration's say
// alone), and `error_buffer` (CURL_ERROR_SIZE bytes) for details.
Result<EasyHandle> NewEasyHandle(const TransferLimits& limits, char* error_buffer);

// The time to wait for a connection within the total timeout.
int64_t ConnectTimeoutMs(int64_t timeout_ms);

}  // namespace airlock::notifiers
