// The isolator conformance kit (airlock/testing/isolator_conformance.hpp)
// run against the in-tree isolators: inprocess (development only, no
// isolation, said so) and process (namespaces, seccomp, no capabilities,
// each checked from outside on a real enclave process).
#include "airlock/testing/isolator_conformance.hpp"

#include "tests/support/temp_dir.h"

namespace {

using airlock::Result;
using airlock::conformance::IsolatorSetup;

std::string Plugin(const std::string& name) {
  return std::string(AIRLOCK_PLUGIN_DIR) + "/" + name + ".so";
}

std::string EnclaveExecutable() {
  return std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock-enclave";
}

class InprocessFixture : public airlock::conformance::IsolatorFixture {
 public:
  Result<IsolatorSetup> Prepare() override {
    return IsolatorSetup{Plugin("airlock_isolator_inprocess"), "{}", EnclaveExecutable()};
  }
};

class ProcessFixture : public airlock::conformance::IsolatorFixture {
 public:
  Result<IsolatorSetup> Prepare() override {
    static const airlock::test::TempDir state("airlock-isolator-conformance-");
    const nlohmann::json config = {
        {"state_dir", state.path()},
        {"min_isolation", {"pid_namespace", "network_namespace", "no_new_privs", "seccomp"}}};
    return IsolatorSetup{Plugin("airlock_isolator_process"), config.dump(), EnclaveExecutable()};
  }
};

}  // namespace

AIRLOCK_ISOLATOR_CONFORMANCE_SUITE(Inprocess, InprocessFixture);
AIRLOCK_ISOLATOR_CONFORMANCE_SUITE(Process, ProcessFixture);
