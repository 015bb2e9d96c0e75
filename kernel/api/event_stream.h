// GET /v1/events: the requests a caller may see, as they change, in the
// Server-Sent Events format (text/event-stream).
//
// Each event of the hub (kernel/core/event_hub.h) becomes, for a watcher
// that may see its request (as GET /v1/requests/{id} decides):
//
//   id: 42
//   event: request
//   data: {"id":42,"event":"request.approved","request_id":"req_…",
//          "state":"approved","version":3,"request":{…the request's view…}}
//
// A watcher gets "event: ready" (with the current id) first; one that
// resumes (Last-Event-ID) from an id the hub no longer holds, or from
// another kernel's numbering, gets "event: reset" and should reload what it
// shows. Views are read on the streamer's own threads, never on an I/O or a
// publishing thread.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <boost/asio/thread_pool.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/api/http_types.h"
#include "kernel/core/event_hub.h"
#include "kernel/core/metrics.h"
#include "kernel/core/request_manager.h"

namespace airlock {

class EventStreamer {
 public:
  // `hub`, `requests` and `metrics` (may be null) outlive the streamer;
  // publishing must have stopped before it is destroyed. The number of
  // open streams is the gauge airlock_event_watchers.
  EventStreamer(EventHub* hub, RequestManager* requests, Metrics* metrics,
                size_t max_watchers = 256);
  ~EventStreamer();  // Shutdown()
  EventStreamer(const EventStreamer&) = delete;
  EventStreamer& operator=(const EventStreamer&) = delete;

  // A stream for `caller` of the events after `after` (0: from now on).
  // ResourceExhausted when max_watchers streams are open.
  Result<std::shared_ptr<ResponseStream>> Open(const Principal& caller, uint64_t after);

  // Ends every stream's production and waits for the work under way.
  void Shutdown();

  size_t watchers() const { return watchers_.load(); }

 private:
  class Watcher;
  friend class Watcher;

  // The open streams changed by `delta`.
  void CountWatchers(int delta);

  EventHub* const hub_;
  RequestManager* const requests_;
  Metrics::Counter* const gauge_;  // null without metrics
  const size_t max_watchers_;
  std::atomic<size_t> watchers_{0};
  std::atomic<bool> stopped_{false};
  boost::asio::thread_pool pool_{2};
};

}  // namespace airlock
