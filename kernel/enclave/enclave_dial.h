// The enclave's end of a link it dials itself: an enclave in a pod (the
// kubernetes isolator) connects out to the kernel over mutual TLS, then
// serves its control channel over that connection. The kernel never needs a
// route into the pod network.
//
// The link directory holds ca.crt (the authority the kernel's link
// certificate must chain to), tls.crt and tls.key (this enclave's one-time
// client certificate). The kernel's name is checked against its
// certificate: an IP literal against the IP SANs, a name against the DNS SANs.
#pragma once

#include <chrono>
#include <string>

#include "airlock/cpp/status.hpp"
#include "kernel/enclave/enclave_runtime.h"

namespace airlock::enclave {

struct DialOptions {
  std::string kernel;    // host:port
  std::string link_dir;  // ca.crt, tls.crt, tls.key
  // How long to keep trying to reach the kernel (a new pod's network may
  // take a moment, and the kernel may be restarting).
  std::chrono::milliseconds connect_deadline{60000};
};

// Dials, then runs ServeEnclave on a local socket pair whose other end is
// pumped over the TLS connection. Returns when the enclave ends.
Status DialAndServe(const DialOptions& options, EnclaveEnvironment env);

}  // namespace airlock::enclave
