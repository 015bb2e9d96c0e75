#include "email/message.h"

#include <algorithm>
#include <array>

#include <openssl/sha.h>

#include "airlock/cpp/base64url.hpp"
#include "common/text_util.h"

namespace airlock::notifiers::email {
namespace {

constexpr size_t kSubjectBytes = 200;
constexpr size_t kEncodedChunkBytes = 45;  // 60 base64 characters per encoded word

bool PrintableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F;
  });
}

std::string Base64(std::string_view bytes) {
  return sdk::Base64Encode(bytes);
}

// Only [A-Za-z0-9._-]: an event name in a header can carry nothing else.
std::string Token(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 100)) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '_' || c == '-') {
      out.push_back(c);
    }
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace

std::string MessageIdFor(std::string_view notification_id, std::string_view domain) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(notification_id.data()), notification_id.size(),
         digest.data());
  const std::string hex =
      Hex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  return "<airlock." + hex.substr(0, 32) + "@" + std::string(domain) + ">";
}

std::string EncodeHeaderText(std::string_view text) {
  if (PrintableAscii(text)) return std::string(text);
  std::string out;
  while (!text.empty()) {
    const std::string_view chunk = TruncateUtf8(text, kEncodedChunkBytes);
    // A character longer than the chunk cannot happen (UTF-8 is at most 4 bytes).
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64(chunk) + "?=";
    text.remove_prefix(chunk.size());
  }
  return out;
}

std::string QuotedPrintable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  size_t line = 0;  // characters on the current output line
  const auto put = [&](std::string_view piece) {
    if (line + piece.size() > 75) {  // 75 + the soft break's '=' = 76
      out += "=\r\n";
      line = 0;
    }
    out += piece;
    line += piece.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r') continue;
    if (c == '\n') {
      out += "\r\n";
      line = 0;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    const bool at_line_end = i + 1 == text.size() || text[i + 1] == '\n' || text[i + 1] == '\r';
    const bool literal =
        (u >= 33 && u <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_line_end);
    if (literal) {
      put(std::string_view(&c, 1));
    } else {
      const char escaped[3] = {'=', kHex[u >> 4], kHex[u & 0x0F]};
      put(std::string_view(escaped, 3));
    }
  }
  return out;
}

std::string ComposeMessage(const MessageParts& parts, const NotificationText& text) {
  std::string to;
  for (size_t i = 0; i < parts.to.size(); ++i) {
    if (i > 0) to += ",\r\n ";
    to += parts.to[i];
  }
  const std::string subject = EncodeHeaderText(CleanText("[Airlock] " + text.title, kSubjectBytes));

  std::string body = text.headline + "\n\n";
  for (const Fact& fact : text.facts) body += fact.label + ": " + fact.value + "\n";
  if (!text.link_url.empty()) body += "\n" + text.link_label + ":\n" + text.link_url + "\n";
  body += "\n-- \nAirlock notification " + CleanText(parts.notification_id, 200) + "\n";

  std::string message;
  message += "From: " + FormatMailbox(parts.from) + "\r\n";
  message += "To: " + to + "\r\n";
  message += "Subject: " + subject + "\r\n";
  message += "Date: " + FormatRfc5322Date(parts.date_unix) + "\r\n";
  message +=
      "Message-ID: " + MessageIdFor(parts.notification_id, DomainOf(parts.from.address)) + "\r\n";
  message += "MIME-Version: 1.0\r\n";
  message += "Content-Type: text/plain; charset=UTF-8\r\n";
  message += "Content-Transfer-Encoding: quoted-printable\r\n";
  // RFC 3834: no vacation auto-replies to a machine's messages.
  message += "Auto-Submitted: auto-generated\r\n";
  message += "X-Airlock-Event: " + Token(parts.event) + "\r\n";
  message += "\r\n";
  message += QuotedPrintable(body);
  return message;
}

}  // namespace airlock::notifiers::email
