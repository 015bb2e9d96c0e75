// The identity conformance kit against a provider broken on purpose
// (broken_identity.cc): run by ctest, which expects exactly the checks it
// breaks to fail (tests/plugins/identity/conformance/CMakeLists.txt).
#include "airlock/testing/identity_conformance.hpp"

namespace {

class BrokenFixture : public airlock::conformance::IdentityFixture {
 public:
  airlock::Result<airlock::conformance::IdentitySetup> Prepare() override {
    airlock::conformance::IdentitySetup setup;
    setup.plugin_path = BROKEN_IDENTITY_PATH;
    setup.config_json = "{}";
    airlock::conformance::IdentityRequest good;
    good.headers = {{"Authorization", "Bearer broken-good-token"}};
    airlock::conformance::IdentityRequest wrong;
    wrong.headers = {{"Authorization", "Bearer broken-wrong-token-5d1"}};
    setup.accepted = {{"the good token", good, "alice", {"analysts"}}};
    setup.refused = {{"a wrong token", wrong}};
    setup.secrets = {"broken-good-token", "broken-wrong-token-5d1"};
    return setup;
  }
};

}  // namespace

AIRLOCK_IDENTITY_CONFORMANCE_SUITE(Broken, BrokenFixture);
