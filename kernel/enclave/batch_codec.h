// Byte codec for record batches on the kernel <-> enclave socket.
//
// The kernel decodes what an enclave sends, and an enclave may be hostile, so
// every decoder here bounds-checks the whole payload before handing anything
// out: a truncated, corrupt or lying payload yields InvalidArgument, never an
// out-of-bounds read. Decoded batches are zero-copy: their buffers point into
// the payload string, which the returned array keeps alive.
//
// WIRE FORMAT (little-endian; "pad8" = zero bytes up to the next multiple of 8
// counted from the start of the payload; decoders reject non-zero padding,
// unknown tags and trailing bytes).
//
// Schema:
//   "ALS1" | u32 field_count
//   per field: u8 type (arrow::Type) | u8 flags (bit 0 = nullable, others 0)
//              | u32 name_len | name | u32 tz_len | tz (tz only for timestamps)
//
// Batch:
//   "ALB1" | u32 column_count | u64 row_count
//   per column: u8 type | u8 has_validity (0/1) | 6 zero bytes
//     [has_validity: bitmap of ceil(rows/8) bytes, bit set = valid | pad8]
//     bool:                  ceil(rows/8) bytes of value bits | pad8
//     int32, date32:         rows * 4 bytes | pad8
//     int64, float64,
//     timestamp, time64:     rows * 8 bytes | pad8
//     utf8, binary:          (rows + 1) * i32 offsets, first 0, non-decreasing | pad8
//                            | u64 data_len (== last offset) | data | pad8
//     null:                  nothing (has_validity must be 0)
// Every column of a decoded batch has offset 0; struct-level nulls of the
// encoded view are folded into each column's validity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock {

// Decoder limits. Encoders do not check them: a schema beyond them encodes
// but is refused by DecodeSchema.
inline constexpr size_t kMaxBatchColumns = 4096;
inline constexpr size_t kMaxFieldNameBytes = 4096;
inline constexpr size_t kMaxTimezoneBytes = 256;
inline constexpr uint64_t kMaxBatchRows = 0x7FFFFFFF;

// Serialises a schema. Thread-safe (pure).
std::string EncodeSchema(const std::vector<arrow::Field>& fields);

// Parses EncodeSchema's output. InvalidArgument on any malformed input.
Result<std::vector<arrow::Field>> DecodeSchema(std::string_view bytes);

// Appends the batch's encoding to `*out` (alignment is counted from where the
// batch starts in `*out`, so decode it from its own string). Sliced views are
// normalised: the decoded columns start at offset 0.
void EncodeBatch(const arrow::BatchView& batch, std::string* out);

// Decodes one batch encoded against `fields` (column count and types must
// match). On success the struct array's buffers point into `payload`, which the
// array owns until released. InvalidArgument when the payload is malformed,
// does not match `fields`, or has nulls in a non-nullable column.
Result<arrow::OwnedArray> DecodeBatch(const std::vector<arrow::Field>& fields, std::string payload);

}  // namespace airlock
