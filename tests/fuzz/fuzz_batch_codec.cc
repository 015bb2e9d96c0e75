// The record batch codec on the kernel <-> enclave socket, decoded as the
// kernel decodes what an enclave sends. Input layout (the fuzz target's own):
//   u16 little-endian schema length | schema bytes | batch bytes
// The schema is decoded with DecodeSchema and, when valid, the rest with
// DecodeBatch against it.
//
// Checked beyond the sanitizers: a decoded schema encodes back to exactly
// its input (the wire format has one encoding per schema), and a decoded
// batch re-encodes to bytes that decode and re-encode unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "kernel/enclave/batch_codec.h"

namespace {

using airlock::arrow::BatchView;
using airlock::arrow::Field;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "batch codec: %s\n", what);
  std::abort();
}

std::string Reencode(const std::vector<Field>& fields, const airlock::arrow::OwnedArray& array) {
  auto view = BatchView::Make(fields, *array.get());
  if (!view.ok()) Fail("a decoded batch does not make a view");
  std::string out;
  airlock::EncodeBatch(*view, &out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t schema_size = static_cast<size_t>(data[0]) | (static_cast<size_t>(data[1]) << 8);
  if (schema_size > size - 2) return 0;
  const std::string_view schema_bytes(reinterpret_cast<const char*>(data) + 2, schema_size);
  auto fields = airlock::DecodeSchema(schema_bytes);
  if (!fields.ok()) return 0;
  if (airlock::EncodeSchema(*fields) != schema_bytes)
    Fail("schema does not re-encode to its input");

  std::string payload(reinterpret_cast<const char*>(data) + 2 + schema_size,
                      size - 2 - schema_size);
  auto batch = airlock::DecodeBatch(*fields, std::move(payload));
  if (!batch.ok()) return 0;
  const std::string first = Reencode(*fields, *batch);
  auto again = airlock::DecodeBatch(*fields, first);
  if (!again.ok()) Fail("a re-encoded batch is refused");
  if (Reencode(*fields, *again) != first) Fail("re-encoding is not a fixed point");
  return 0;
}
