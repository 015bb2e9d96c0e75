// The peer link: what one kernel replica asks of another that serves a
// request (its enclave and tunnel endpoint live there). A replica that is
// asked for a request it does not serve forwards the call instead of sending
// the client elsewhere: a tunnel query (the owner runs and audits it), the
// schema browse, and the collection of the tunnel credential.
//
// Calls go to the owner's API URL (the `replicas` table) under
// /v1/peer/..., authenticated by the secret every replica shares
// (state.peer.secret), sent as a bearer token; over HTTPS the owner's
// certificate is verified against state.peer.ca_file (or the system's CAs)
// and its host name. One connection per call, every step bounded by the
// call's timeout.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "kernel/common/secret.h"

namespace boost::asio::ssl {
class context;
}
namespace boost::beast::http {
template <bool isRequest, class Body, class Allocator>
class parser;
}

namespace airlock {

// The most a forwarded query result may hold, encoded (peer_result.h).
inline constexpr size_t kMaxPeerResultBytes = size_t{256} << 20;

struct PeerClientOptions {
  Secret secret;        // the shared peer secret
  std::string ca_file;  // empty: the system's CAs
  std::string self;     // this replica's id, named to the owner for its audit
};

struct PeerAnswer {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

class PeerClient {
 public:
  static Result<std::unique_ptr<PeerClient>> Create(PeerClientOptions options);
  ~PeerClient();

  // Runs `sql` on request `id`'s enclave at the replica at `base_url`,
  // feeding the result to `consumer`. `transport` names the tunnel the
  // query came in by (for the owner's audit record).
  Status Query(const std::string& base_url, const std::string& id, std::string_view sql,
               const std::string& transport, sdk::BatchConsumer& consumer,
               std::chrono::milliseconds timeout) const;
  // The request's tables ({"tables":[...]}) as the owner's enclave lists them.
  Result<nlohmann::json> Tables(const std::string& base_url, const std::string& id,
                                std::chrono::milliseconds timeout) const;
  // Takes the request's tunnel grant (credential included, once) from the
  // owner, for `subject`, who must be the requester.
  Result<nlohmann::json> TakeGrant(const std::string& base_url, const std::string& id,
                                   const std::string& subject,
                                   std::chrono::milliseconds timeout) const;

  // Writes the body of GET `target` on `base_url` to a new file at `path`
  // (which must not exist), at most `max_bytes`. On any failure the file
  // is removed and the owner's refusal, if it answered one, returned.
  Status Download(const std::string& base_url, const std::string& target, const std::string& path,
                  uint64_t max_bytes, std::chrono::milliseconds timeout) const;

  const std::string& self() const { return options_.self; }

  // One HTTP exchange: `method` `target` on `base_url` ("http://host:port"
  // or "https://host:port") with a JSON body (empty: none). The answer is
  // bounded by kMaxPeerResultBytes.
  Result<PeerAnswer> Call(const std::string& base_url, std::string_view method,
                          const std::string& target, const std::string& body,
                          std::chrono::milliseconds timeout) const;

 private:
  explicit PeerClient(PeerClientOptions options);
  // Sends one request and reads the answer into `parser` (a Beast response
  // parser, string or file body).
  template <typename Body>
  Status Send(const std::string& base_url, std::string_view method, const std::string& target,
              const std::string& body, std::chrono::milliseconds timeout,
              boost::beast::http::parser<false, Body, std::allocator<char>>& parser) const;

  PeerClientOptions options_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
};

// The Status a peer's error answer stands for: its {"error","message"} body
// (message kept, prefixed by who answered) and the HTTP status's code.
Status StatusFromPeerAnswer(const PeerAnswer& answer, const std::string& who);

}  // namespace airlock
