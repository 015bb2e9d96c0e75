// The server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as MongoDB runs it
// over saslStart / saslContinue, so that a driver's real authentication code
// runs against the test server and a wrong password fails the way it does
// against mongod (code 18, AuthenticationFailed).
//
// Limits (test double): SASLprep is the identity (ASCII passwords only), no
// channel binding, one conversation per connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::testing::mongodb {

// Derived keys of one user; the plain password is not kept.
struct ScramCredential {
  std::string salt;
  uint32_t iterations = 4096;
  std::string stored_key;  // H(ClientKey)
  std::string server_key;  // HMAC(SaltedPassword, "Server Key")

  static ScramCredential Derive(std::string_view password);
};

class ScramConversation {
 public:
  // client-first-message ("n,,n=user,r=nonce"): the server-first-message, or
  // nullopt when malformed. `lookup` finds the user's credential.
  template <typename Lookup>
  std::optional<std::string> Start(std::string_view client_first, Lookup&& lookup);

  // client-final-message: the server-final-message ("v=..."), or nullopt
  // when the proof is wrong or the message malformed.
  std::optional<std::string> Finish(std::string_view client_final);

  const std::string& user() const { return user_; }

 private:
  std::optional<std::string> StartWith(std::string_view client_first,
                                       std::optional<ScramCredential> credential);

  std::string user_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;
  std::optional<ScramCredential> credential_;
};

template <typename Lookup>
std::optional<std::string> ScramConversation::Start(std::string_view client_first,
                                                    Lookup&& lookup) {
  // The user name sits between "n=" and the next ','.
  const size_t n = client_first.find(",n=");
  if (n == std::string_view::npos) return std::nullopt;
  const size_t end = client_first.find(',', n + 3);
  if (end == std::string_view::npos) return std::nullopt;
  user_ = std::string(client_first.substr(n + 3, end - n - 3));
  return StartWith(client_first, lookup(user_));
}

std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace airlock::testing::mongodb
