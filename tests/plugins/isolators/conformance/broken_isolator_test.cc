// The isolator conformance kit against an isolator broken on purpose
// (broken_isolator.cc): run by ctest, which expects exactly the checks it
// breaks to fail (tests/plugins/isolators/conformance/CMakeLists.txt).
#include "airlock/testing/isolator_conformance.hpp"

namespace {

class BrokenFixture : public airlock::conformance::IsolatorFixture {
 public:
  airlock::Result<airlock::conformance::IsolatorSetup> Prepare() override {
    return airlock::conformance::IsolatorSetup{BROKEN_ISOLATOR_PATH, "{}", ENCLAVE_EXECUTABLE};
  }
};

}  // namespace

AIRLOCK_ISOLATOR_CONFORMANCE_SUITE(Broken, BrokenFixture);
