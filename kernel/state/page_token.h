// Opaque List page tokens shared by the state store backends: a keyset
// cursor (created_at_us, id) of the last record returned, hex-encoded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"

namespace airlock {

struct PageCursor {
  int64_t created_at_us = 0;
  std::string id;
};

std::string EncodePageToken(const PageCursor& cursor);

// InvalidArgument for anything EncodePageToken did not produce.
Result<PageCursor> DecodePageToken(std::string_view token);

}  // namespace airlock
