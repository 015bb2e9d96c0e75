// Test identity provider: trusts the X-Test-User header (fixture only).
#include <stdexcept>

#include "airlock/cpp/plugin.hpp"

namespace {

using airlock::Principal;
using airlock::Result;
using airlock::Status;

class TestIdentity : public airlock::sdk::IdentityProvider {
 public:
  static Result<std::unique_ptr<TestIdentity>> Create(const airlock::Json& config,
                                                      const airlock::sdk::Host& /*host*/) {
    if (config.contains("refuse")) return Status::InvalidArgument("configuration refused: refuse");
    auto made = std::make_unique<TestIdentity>();
    made->tenant_ = config.value("tenant", "");
    return made;
  }

  Result<Principal> Authenticate(const airlock::sdk::HttpRequestView& request) override {
    if (!request.Header("X-Test-Throw").empty()) throw std::runtime_error("boom from identity");
    if (!request.Header("X-Test-Empty-Subject").empty()) return Principal{};
    const std::string_view user = request.Header("X-Test-User");
    if (user.empty()) return Status::NotApplicable("no X-Test-User header");
    if (user == "mallory") return Status::Unauthenticated("user mallory is locked");
    Principal principal;
    principal.subject = std::string(user);
    if (request.Header("X-Test-Kind") == "service")
      principal.kind = airlock::PrincipalKind::kService;
    std::string_view groups = request.Header("X-Test-Groups");
    while (!groups.empty()) {
      const size_t comma = groups.find(',');
      principal.groups.emplace_back(groups.substr(0, comma));
      groups = comma == std::string_view::npos ? std::string_view() : groups.substr(comma + 1);
    }
    principal.tenant = tenant_;
    principal.provider = "someone-else";  // the host must overwrite this
    principal.attributes = {{"remote", std::string(request.remote_address)},
                            {"method", std::string(request.method)}};
    return principal;
  }

 private:
  std::string tenant_;
};

}  // namespace

AIRLOCK_IDENTITY_PLUGIN(TestIdentity, "test-identity", "1.2.3", "Trusts X-Test-User (tests only)",
                        R"({"type":"object","properties":{"tenant":{"type":"string"}}})")
