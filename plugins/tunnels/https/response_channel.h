// How a query thread answers the request it is serving. Implemented by the
// connection (session); every method may be called from any thread.
#pragma once

#include <string>
#include <string_view>

#include "http_util.h"

namespace airlock::tunnels::https {

class ResponseChannel {
 public:
  virtual ~ResponseChannel() = default;

  // Completes the current request with `response` (written asynchronously);
  // the connection then reads its next request or closes.
  virtual void Respond(Response response) = 0;

  // Streaming with chunked transfer encoding. BeginChunked sends the header,
  // WriteChunk one chunk; both block until written and return false when the
  // connection failed or was closed. EndChunked writes `data` as a last data
  // chunk plus the terminating chunk (asynchronously) and completes the request.
  virtual bool BeginChunked(http::status status, unsigned version, bool keep_alive) = 0;
  virtual bool WriteChunk(std::string_view data) = 0;
  virtual void EndChunked(std::string data, bool keep_alive) = 0;

  // True once a write failed or the connection was closed.
  virtual bool broken() const = 0;
};

}  // namespace airlock::tunnels::https
