// Single sign-on for the CLI: the OpenID Connect authorization-code flow
// with PKCE (S256) as a native app does it (RFC 8252). The CLI listens on a
// loopback port of its own, sends the user's browser to the provider with
// a redirect back to http://127.0.0.1:<port>/callback, checks the `state`
// of the answer, exchanges the code for tokens with the verifier, checks
// the ID token's `nonce`, `iss` and `aud`, and returns the ID token: the
// kernel verifies its signature and expiry itself (oidc-jwt identity).
//
// The provider must know the client as a public native client whose
// redirect URI is http://127.0.0.1/callback (any port, RFC 8252 §7.3).
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "airlock/cpp/status.hpp"

namespace airlock::cli {

struct SsoSettings {
  std::string issuer;     // https://..., as the server's console.oidc names it
  std::string client_id;  // the CLI's client at the provider
  std::string scopes = "openid";
  std::string ca_file;  // verifies the provider (empty: the system's trust store)
  bool open_browser = true;
  std::chrono::seconds timeout{300};  // for the user to sign in
};

// The ID token once the user signed in. `say` gets what the user must read
// (the address to open). Unavailable when the provider cannot be reached,
// Unauthenticated when it refused the sign-in, DeadlineExceeded when
// nobody came back in time.
Result<std::string> SignInWithSso(const SsoSettings& settings, std::ostream& say);

}  // namespace airlock::cli
