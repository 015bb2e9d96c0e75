// The composition root: builds every kernel part from a KernelConfig and
// wires them together (audit, state store, plugin host, request manager, HTTP
// API). Owns nothing but the parts; all behaviour lives in them.
#pragma once

#include <memory>

#include "airlock/cpp/status.hpp"
#include "kernel/api/http_types.h"
#include "kernel/core/config.h"

namespace airlock {

class KernelApp {
 public:
  // Opens the state store and the audit log, loads the plugin set, recovers
  // requests a previous run left, and starts serving HTTP.
  static Result<std::unique_ptr<KernelApp>> Start(KernelConfig config);
  ~KernelApp();

  // Answers one API request in this process exactly as the HTTP server's
  // handler threads do (same authentication, limits and durability); for
  // embedding the kernel and for measuring it without sockets. Blocks while
  // the request's commits are made durable. Thread-safe.
  HttpResponse Handle(const HttpRequest& request) const;

  uint16_t port() const;
  bool tls() const;
  // Re-reads the policy plugin's configuration; the old policy stays on failure.
  Status ReloadPolicy();
  // Stops serving, tears down live enclaves. Idempotent.
  void Stop();

 private:
  KernelApp();
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace airlock
