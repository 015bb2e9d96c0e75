// Where the JWKS document comes from: a local file, or an HTTPS URL fetched
// with Boost.Beast over OpenSSL (server certificate and host name verified
// against a configured CA bundle or the system store). Every fetch is bounded
// in time (one deadline for resolve, connect, handshake, request and
// response) and in size (body limit).
#pragma once

#include <memory>
#include <string>

#include "airlock/cpp/status.hpp"
#include "config.h"

namespace airlock::identity::oidc_jwt {

class JwksSource {
 public:
  virtual ~JwksSource() = default;
  // The document's text. Errors say what failed (unreachable, TLS, HTTP
  // status, too large) without quoting the body.
  virtual Result<std::string> Fetch() = 0;
  // "file /path" or "https://host/path", for messages.
  virtual std::string Describe() const = 0;
};

// The source `config` names (file or URL). InvalidArgument for a URL that is
// not https://host[:port]/path or a CA file that cannot be loaded.
Result<std::unique_ptr<JwksSource>> MakeJwksSource(const JwksSourceConfig& config);

}  // namespace airlock::identity::oidc_jwt
