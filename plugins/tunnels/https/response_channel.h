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

  // Streaming with chunked transfer encoding. BeginChunked sends `header`
  // (status, Content-Type, keep-alive, Trailer...; the channel marks it
  // chunked), WriteChunk one chunk; both block until written and return false
  // when the connection failed or was closed.
  virtual bool BeginChunked(ResponseHeader header) = 0;
  virtual bool WriteChunk(std::string_view data) = 0;
  // Writes `data` as a last data chunk, then the terminating chunk carrying
  // `trailers` (asynchronously), and completes the request.
  virtual void EndChunked(std::string data, http::fields trailers, bool keep_alive) = 0;
  // Writes `data` as a last data chunk and closes the connection without the
  // terminating chunk: the client sees a truncated body.
  virtual void AbortChunked(std::string data) = 0;

  // True once a write failed or the connection was closed.
  virtual bool broken() const = 0;
};

}  // namespace airlock::tunnels::https
