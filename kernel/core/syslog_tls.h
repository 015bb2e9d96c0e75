// Audit records to a syslog receiver over TLS (RFC 5425): each record one
// RFC 5424 message, framed by its octet count, on a kept-open connection.
//
// Syslog has no acknowledgement of its own. A batch counts as delivered
// once the receiver's TCP stack acknowledged every byte of it (the socket's
// send queue is empty): a receiver that goes away before then makes the
// batch fail, and it is sent again on a new connection from the exporter's
// cursor. A receiver process that dies with acknowledged bytes still unread
// in its socket loses them; where that matters, export over HTTPS (an
// answer per batch) instead.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock {

// `record` (an audit record, chain fields included) as an RFC 5424 message:
// facility log audit (13), severity informational, the record's time,
// APP-NAME airlock, MSGID the event, the sequence number as structured
// data, and the record itself as a UTF-8 JSON message.
std::string SyslogMessage(const nlohmann::json& record, std::string_view hostname, int pid);

class SyslogTlsClient {
 public:
  // `url`: tls://host[:port] (port 6514 by default). `ca_file` verifies the
  // receiver (empty: the system's CAs); its name or address must match.
  static Result<std::unique_ptr<SyslogTlsClient>> Create(const std::string& url,
                                                         const std::string& ca_file,
                                                         std::chrono::milliseconds timeout);
  ~SyslogTlsClient();
  SyslogTlsClient(const SyslogTlsClient&) = delete;
  SyslogTlsClient& operator=(const SyslogTlsClient&) = delete;

  // Sends `messages` in order, connecting first when needed, and returns
  // once the receiver acknowledged every byte. On failure the connection is
  // dropped (the next Send connects again).
  Status Send(const std::vector<std::string>& messages);

  SyslogTlsClient() = default;  // use Create()

 private:
  Status Connect();
  Status WaitAcknowledged(std::chrono::steady_clock::time_point deadline);
  void Close();

  std::string host_;
  std::string port_;
  std::chrono::milliseconds timeout_{10000};
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

}  // namespace airlock
