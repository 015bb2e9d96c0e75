// A small client of the Kubernetes REST API: JSON calls and watch streams
// over HTTPS with the cluster's CA verified and a bearer token, through
// Boost.Beast and OpenSSL. One connection per call (calls are rare: a few
// per enclave); every socket operation is bounded.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"

namespace airlock::isolators::kubernetes {

struct ApiReply {
  int status = 0;
  Json body;  // null when the body was not JSON
};

// Lets another thread end a watch in progress.
class WatchCanceller {
 public:
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }
  // The watch publishes its socket while it reads; -1 when none.
  void Publish(int fd);

 private:
  std::mutex mutex_;
  int fd_ = -1;  // GUARDED_BY(mutex_)
  std::atomic<bool> cancelled_{false};
};

class KubeClient {
 public:
  static Result<std::unique_ptr<KubeClient>> Create(const ClusterAccess& access,
                                                    const sdk::Host& host);
  ~KubeClient();

  // One call; any HTTP status is a reply. Errors are transport failures.
  Result<ApiReply> Call(const std::string& method, const std::string& target, const Json* body);

  // Calls and turns a status outside 2xx into a Status that says what was
  // being done and what Kubernetes answered (its Status object's message
  // and reason): 403 PermissionDenied naming the missing permission, 404
  // NotFound, 409 AlreadyExists, 410 FailedPrecondition ("Gone"), 422
  // InvalidArgument, 401 Unauthenticated, 5xx Unavailable.
  Result<Json> Expect(const std::string& method, const std::string& target, const Json* body,
                      const std::string& doing);

  // Streams the watch at `target` (which carries watch=1 and its
  // parameters), calling `on_event` with each event object; `on_event`
  // returns false to stop. Returns Ok when the server ended the stream or
  // on_event stopped it, Cancelled when `canceller` ended it.
  Status Watch(const std::string& target, const std::function<bool(const Json&)>& on_event,
               WatchCanceller* canceller, const std::string& doing);

 private:
  struct Impl;
  explicit KubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The error a reply outside 2xx means, as Expect reports it.
Status StatusFromReply(const ApiReply& reply, const std::string& doing);

// Percent-encodes a query parameter value.
std::string QueryEscape(const std::string& value);

}  // namespace airlock::isolators::kubernetes
