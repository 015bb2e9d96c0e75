// A query result as one replica sends it to another over the peer link (a
// tunnel query that reached a replica not serving the request is run by the
// replica that does; see peer_client.h).
//
// WIRE FORMAT (the body of an application/vnd.airlock.result response):
//   frame*  where  frame = u32 length (little-endian) | payload
// The first payload is the schema (batch_codec.h EncodeSchema), each later one
// a batch (EncodeBatch) of that schema. A result without a schema frame is
// empty (a statement that returned no columns).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock {

inline constexpr std::string_view kPeerResultContentType = "application/vnd.airlock.result";

// Collects a result in the wire format, refusing to grow past `max_bytes`
// (ResourceExhausted). Not thread-safe.
class PeerResultEncoder final : public sdk::BatchConsumer {
 public:
  explicit PeerResultEncoder(size_t max_bytes) : max_bytes_(max_bytes) {}

  Status OnSchema(arrow::OwnedSchema schema) override;
  Status OnBatch(arrow::OwnedArray batch) override;

  // The encoded result; the encoder is empty afterwards.
  std::string Take() { return std::move(out_); }

 private:
  Status AppendFrame(std::string_view payload);

  size_t max_bytes_;
  std::vector<arrow::Field> fields_;
  bool has_schema_ = false;
  std::string out_;
};

// Feeds `consumer` the result in `body`, checking every frame first (the body
// comes from another process over the network): a truncated frame, a batch
// before its schema, a second schema or a malformed payload is
// InvalidArgument. Stops with the consumer's error, or Cancelled when the
// consumer asks to stop.
Status DecodePeerResult(std::string_view body, sdk::BatchConsumer& consumer);

}  // namespace airlock
