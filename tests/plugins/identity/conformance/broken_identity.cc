// A deliberately broken identity provider, to prove the conformance kit can
// fail: it answers "unauthenticated" (not "not applicable") to a request
// without its credential, so no provider after it is ever tried, and it
// quotes the presented token in its refusal, so a credential reaches logs.
#include <string>

#include "airlock/cpp/plugin.hpp"

namespace {

class BrokenIdentity final : public airlock::sdk::IdentityProvider {
 public:
  static airlock::Result<std::unique_ptr<BrokenIdentity>> Create(const airlock::Json& config,
                                                                 const airlock::sdk::Host&) {
    if (!config.is_object()) return airlock::Status::InvalidArgument("config must be an object");
    for (const auto& item : config.items()) {
      return airlock::Status::InvalidArgument("unknown key '" + item.key() + "'");
    }
    return std::make_unique<BrokenIdentity>();
  }

  airlock::Result<airlock::Principal> Authenticate(
      const airlock::sdk::HttpRequestView& request) override {
    const std::string authorization(request.Header("Authorization"));
    if (authorization == "Bearer broken-good-token") {
      airlock::Principal principal;
      principal.subject = "alice";
      principal.groups = {"analysts"};
      return principal;
    }
    return airlock::Status::Unauthenticated("token '" + authorization + "' is not known");
  }
};

}  // namespace

AIRLOCK_IDENTITY_PLUGIN(BrokenIdentity, "broken-identity", "0.0.1",
                        "Fails the identity conformance kit on purpose", nullptr)
