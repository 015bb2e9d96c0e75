// A broadcast channel between the replicas sharing one PostgreSQL database,
// over LISTEN/NOTIFY: what one replica sends, every other one receives,
// within milliseconds. The kernel relays its live events through it
// (GET /v1/events shows what every replica did).
//
// Delivery is best effort, as NOTIFY is: a payload sent while a receiver is
// reconnecting is not seen by it, and a sender whose queue is full drops the
// payload (counted). Nothing that must not be lost goes through here.
//
// Each channel holds two connections: one that sends (payloads queue in
// memory, so Send never waits on the database) and one that listens. A
// broken connection is opened again after `retry`; a channel's own
// payloads are not handed back to it.
//
// Thread-safety: Send may be called from any thread; `receive` runs on the
// listening thread, one payload at a time, and must only hand work off.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"
#include "kernel/state/postgres_state_store.h"

namespace airlock {

struct PostgresChannelOptions {
  // The NOTIFY channel: lower-case letters, digits and '_', at most 63.
  std::string channel;
  // Who sends: its own payloads are not handed back (the replica id).
  std::string sender;
  PostgresTlsSettings tls;
  int connect_timeout_seconds = 5;
  // Payloads waiting to be sent beyond this are dropped.
  size_t max_queued = 4096;
  std::chrono::milliseconds retry{1000};
};

class PostgresChannel {
 public:
  using Receiver = std::function<void(std::string_view payload)>;

  // Listens before it returns: whatever another channel sends from then on
  // reaches `receive` (unless a connection breaks). Unavailable when the
  // database cannot be reached; InvalidArgument for a bad channel name.
  static Result<std::unique_ptr<PostgresChannel>> Open(const Secret& dsn,
                                                       PostgresChannelOptions options,
                                                       Receiver receive);
  // Stops both threads; what is still queued is not sent.
  ~PostgresChannel();
  PostgresChannel(const PostgresChannel&) = delete;
  PostgresChannel& operator=(const PostgresChannel&) = delete;

  // Queues `payload` (at most 7,000 bytes) for every other channel; false
  // when it was dropped (too long, or the queue is full).
  bool Send(std::string payload);

  uint64_t sent() const;
  uint64_t dropped() const;

  // The longest payload Send takes (NOTIFY's limit, less the sender's tag).
  static constexpr size_t kMaxPayload = 7000;

 private:
  class Impl;
  explicit PostgresChannel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock
