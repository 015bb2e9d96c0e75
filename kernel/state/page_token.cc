#include "kernel/state/page_token.h"

#include <charconv>

#include "kernel/common/crypto.h"
#include "kernel/state/state_store.h"

namespace airlock {
namespace {

constexpr std::string_view kPrefix = "v1:";
constexpr size_t kMaxTokenChars = 2 * (kPrefix.size() + 20 + 1 + kMaxRequestIdBytes);

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

Status Malformed() {
  return Status::InvalidArgument("malformed page token");
}

}  // namespace

std::string EncodePageToken(const PageCursor& cursor) {
  std::string plain(kPrefix);
  plain += std::to_string(cursor.created_at_us);
  plain += ':';
  plain += cursor.id;
  return HexEncode(plain);
}

Result<PageCursor> DecodePageToken(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenChars || token.size() % 2 != 0) return Malformed();
  std::string plain;
  plain.reserve(token.size() / 2);
  for (size_t i = 0; i < token.size(); i += 2) {
    const int high = HexValue(token[i]);
    const int low = HexValue(token[i + 1]);
    if (high < 0 || low < 0) return Malformed();
    plain.push_back(static_cast<char>(high * 16 + low));
  }
  std::string_view rest(plain);
  if (rest.substr(0, kPrefix.size()) != kPrefix) return Malformed();
  rest.remove_prefix(kPrefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0) return Malformed();
  PageCursor cursor;
  const char* begin = rest.data();
  const char* end = rest.data() + colon;
  auto [ptr, ec] = std::from_chars(begin, end, cursor.created_at_us);
  if (ec != std::errc() || ptr != end) return Malformed();
  cursor.id = std::string(rest.substr(colon + 1));
  if (cursor.id.empty() || cursor.id.size() > kMaxRequestIdBytes) return Malformed();
  return cursor;
}

}  // namespace airlock
